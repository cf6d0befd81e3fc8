"""Helpers for the upload pipeline tests: reading back what the store holds, the upload fragment the page
polls, the public cover, and running work (a sweep, a job) through the real worker."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from pathlib import Path
from typing import Any

import psycopg
from litestar.testing import TestClient

from app.db.engine import make_engine, make_sessionmaker
from app.main import make_storage_from
from app.settings import Settings
from app.worker.queue import enqueue
from tests.catalog.conftest import run_jobs
from tests.conftest import post_form

THUMBS = (320, 640, 1280)


def stored_bytes(settings: Settings, key: str, tmp_path: Path) -> bytes:
    """Read an object back through the storage interface (whichever store the settings name)."""
    target = tmp_path / f"read-{hashlib.sha1(key.encode()).hexdigest()}"
    asyncio.run(make_storage_from(settings).download_to(key, target))
    return target.read_bytes()


def keys_under(settings: Settings, prefix: str) -> set[str]:
    async def collect() -> set[str]:
        return {key async for key in make_storage_from(settings).iter_keys(prefix)}

    return asyncio.run(collect())


def put_object(settings: Settings, key: str, source: Path) -> None:
    asyncio.run(make_storage_from(settings).put_file(key, source, "application/octet-stream"))


def fragment(client: TestClient, public_id: str) -> str:
    response = client.get(f"/creator/uploads/{public_id}", headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    return response.text


def polls(fragment_html: str) -> bool:
    return 'hx-trigger="every 1s"' in fragment_html


def cover_src(page: str) -> str:
    match = re.search(r'<div class="item-cover">\s*<img src="([^"]+)"', page)
    assert match, "the item page shows no cover image"
    return html.unescape(match.group(1))


def publish(client: TestClient, item: str) -> None:
    response = post_form(client, f"/creator/items/{item}/publish", {})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/i/{item}"


def in_session(settings: Settings, fn: Any) -> None:
    """Run `fn(session)` with a session of its own, on a fresh engine and event loop."""

    async def main() -> None:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                await fn(session)
        finally:
            await engine.dispose()

    asyncio.run(main())


def run_sweep(settings: Settings) -> None:
    """Queue the sweep as the scheduler would, and let the real worker run it."""

    async def queue_it(session: Any) -> None:
        await enqueue(session, "media.sweep", {})
        await session.commit()

    in_session(settings, queue_it)
    run_jobs(settings)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        state = conn.execute(
            "SELECT state FROM jobs WHERE kind = 'media.sweep' ORDER BY id DESC LIMIT 1").fetchone()
    assert state == ("done",)
