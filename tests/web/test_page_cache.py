"""The public-page micro-cache under concurrency: a crowd asking for one page costs one render."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from app.main import create_app
from app.settings import Settings


def samples(app, result: str) -> float:  # type: ignore[no-untyped-def]
    return app.state.metrics.registry.get_sample_value("fairshelf_page_cache_total", {"result": result}) or 0.0


async def crowd(app, path: str, count: int) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        return await asyncio.gather(*(client.get(path) for _ in range(count)))


def test_a_crowd_on_one_page_costs_one_render(settings: Settings, db: psycopg.Connection) -> None:
    app = create_app(settings.with_(page_cache_seconds=30))
    responses = asyncio.run(crowd(app, "/", 50))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1 and len({r.headers["etag"] for r in responses}) == 1
    assert samples(app, "miss") == 1
    assert samples(app, "coalesced") + samples(app, "hit") == 49
    asyncio.run(app.state.engine.dispose())


def test_pages_that_cannot_be_shared_are_rendered_for_each_request(settings: Settings) -> None:
    app = create_app(settings.with_(page_cache_seconds=30))
    responses = asyncio.run(crowd(app, "/@nobody_here", 20))
    assert {r.status_code for r in responses} == {404}
    assert all("cache-control" not in r.headers or "public" not in r.headers["cache-control"] for r in responses)
    assert samples(app, "hit") == 0 and not app.state.page_cache.entries
    asyncio.run(app.state.engine.dispose())


def test_a_stale_page_is_served_while_one_request_renders_the_new_one(settings: Settings) -> None:
    app = create_app(settings.with_(page_cache_seconds=30, page_cache_stale_seconds=60))
    first = asyncio.run(crowd(app, "/", 1))[0]
    cache = app.state.page_cache
    (key, entry), = cache.entries.items()
    cache.entries[key] = type(entry)(entry.status, entry.headers, entry.body, entry.etag, entry.stored - 45)
    # Past fresh, within stale: the first of the crowd renders anew, everyone else gets the old copy meanwhile.
    again = asyncio.run(crowd(app, "/", 20))
    assert {r.headers["etag"] for r in again} == {first.headers["etag"]}
    assert samples(app, "miss") == 2 and samples(app, "stale") == 19
    assert cache.entries[key].stored > entry.stored
    asyncio.run(app.state.engine.dispose())
