"""Catalog fixtures: a signed-in creator with a draft item, and running the real worker over the queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from app.worker.registry import collect
from app.worker.runner import Worker
from tests.conftest import post_form, sign_up


def become_creator(client: TestClient, username: str, tier: str = "basic") -> None:
    sign_up(client, username)
    response = post_form(client, "/sell", {"tier": tier, "currency": "USD", "bio": "", "links": ""})
    assert response.status_code == 303, response.text


def new_item(client: TestClient, kind: str = "audio", **details: str) -> str:
    response = post_form(client, "/creator/items/new", {"type": kind})
    assert response.status_code == 303, response.text
    public_id = response.headers["location"].split("/")[3]
    if details:
        saved = post_form(client, f"/creator/items/{public_id}/details", details)
        assert saved.status_code == 303, saved.text
    return public_id


def upload(client: TestClient, public_id: str, path: Path, purpose: str = "file", name: str | None = None,
           htmx: bool = False):  # type: ignore[no-untyped-def]
    from tests.conftest import csrf_token

    token = csrf_token(client)
    with path.open("rb") as handle:
        return client.post(
            f"/creator/items/{public_id}/uploads" + ("?purpose=cover" if purpose == "cover" else ""),
            data={"_csrf_token": token},
            files={"file": (name or path.name, handle, "application/octet-stream")},
            headers={"HX-Request": "true"} if htmx else {},
            follow_redirects=False,
        )


def run_jobs(settings: Settings) -> None:
    """Drain the queue with a real worker (burst mode), in this process."""
    handlers, _ = collect()
    asyncio.run(Worker(settings, handlers, [], burst=True).run())


@dataclass
class CreatorSetup:
    client: TestClient
    settings: Settings


@pytest.fixture
def creator(client: TestClient, settings: Settings) -> CreatorSetup:
    become_creator(client, "maker")
    return CreatorSetup(client, settings)
