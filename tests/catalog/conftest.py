"""Catalog fixtures: a signed-in creator with a draft item, and running the real worker over the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
            f"/creator/items/{public_id}/uploads" + ("" if purpose == "file" else f"?purpose={purpose}"),
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


# --- For the creator, wizard and item tests: more people, each with a browser (cookie jar) of their own.

def other_browser(settings: Settings) -> TestClient:
    """A second, independent browser on its own app (same database and settings); use as a context manager."""
    from app.main import create_app

    return TestClient(create_app(settings), base_url="http://testserver.local")


@pytest.fixture
def rival(settings: Settings):  # type: ignore[no-untyped-def]
    """Another signed-in creator, who must never see or change the first creator's drafts."""
    with other_browser(settings) as browser:
        become_creator(browser, "rival")
        yield browser


@pytest.fixture
def visitor(settings: Settings):  # type: ignore[no-untyped-def]
    """An anonymous visitor (never signed in), holding a CSRF cookie like any browser that loaded a page."""
    from tests.conftest import csrf_token

    with other_browser(settings) as browser:
        csrf_token(browser)
        yield browser


def ready_file(client: TestClient, settings: Settings, public_id: str, directory: Path,
               name: str = "song.mp3") -> None:
    """Upload a real (small) MP3 to the item's open version and let the real worker make it ready."""
    from tests.media.samples import write_mp3

    response = upload(client, public_id, write_mp3(directory, name))
    assert response.status_code == 303, response.text
    run_jobs(settings)


def main_of(html: str) -> str:
    """A page's own content, without the site header and footer."""
    return html[html.index("<main"):html.index("</main>")]


def field_of(html: str, name: str) -> str:
    """One field's markup (the element with id="field-<name>"), up to the next field or the form's end."""
    at = html.index(f'id="field-{name}"')
    start = html.rindex("<", 0, at)  # from the element's opening tag
    following = [i for i in (html.find('id="field-', at + 1), html.find("</form>", at)) if i != -1]
    return html[start:min(following)]


# --- For the upload and pipeline tests.

@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    """A second browser (its own cookies) on its own app instance over the same database."""
    with other_browser(settings) as other:
        yield other


@pytest.fixture
def stranger(settings: Settings) -> Iterator[TestClient]:
    """Someone else's browser: a separate app instance and cookie jar on the same database."""
    with other_browser(settings) as other:
        yield other
