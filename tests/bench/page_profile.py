"""Where one uncached request for a public page spends its CPU, in-process, part by part.

No server and no network: the ASGI apps are called directly on one asyncio loop, one request at a time,
against a throwaway embedded PostgreSQL with item_page.py's catalogue, PAGE_CACHE_SECONDS=0. CPU time
(time.process_time) limits a worker's throughput, so it is shown next to wall time (which adds the waits for
PostgreSQL).

  --page item     GET /i/<id>: Fairshelf's whole request and the reference app's (reference_item_app.py),
                  then Fairshelf's parts on their own: the SQLAlchemy session and queries (and the same
                  statements through SQLAlchemy Core and through psycopg_pool), the template, the cover URL;
                  and the 5 SELECTs on one psycopg connection ending with ROLLBACK (as every GET does now),
                  COMMIT or in autocommit, with the PostgreSQL backend's CPU.
  --page creator  GET /@<username> (24 cards): the whole request, the ORM part, the ~20 signed cover URLs,
                  the template.

    .venv/bin/python tests/bench/page_profile.py --page item             # about 1 minute
    .venv/bin/python tests/bench/page_profile.py --page creator --cprofile

The parts are timed apart from each other; "the rest" is the whole request minus its parts: Litestar's
routing, dependency injection, middleware (metrics, page cache, session), the template response and the
before_send hooks.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from common import SECRET_KEY, log, make_workdir, start_database  # noqa: E402
from page_bench import build_catalogue  # noqa: E402

from app.settings import Settings  # noqa: E402


def scope_for(app: Any, path: str) -> dict[str, Any]:
    """An anonymous GET as Granian hands it to the app (no cookies)."""
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def call(app: Any, path: str) -> tuple[int, int]:
    """One request through an ASGI app: (status, body bytes)."""
    out = {"status": 0, "bytes": 0}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["bytes"] += len(message.get("body", b""))

    await app(scope_for(app, path), receive, send)
    return out["status"], out["bytes"]


class Timer:
    def __init__(self, n: int, warmup: int) -> None:
        self.n, self.warmup = n, warmup
        self.rows: list[dict[str, Any]] = []

    async def __call__(self, label: str, fn: Callable[[], Awaitable[Any]],
                       part: bool = True) -> dict[str, Any]:
        for _ in range(self.warmup):
            await fn()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(self.n):
            await fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = {"label": label, "cpu_us": cpu / self.n * 1e6, "wall_us": wall / self.n * 1e6, "part": part}
        self.rows.append(row)
        return row


def request_for(app: Any, path: str) -> Any:
    from litestar import Request

    return Request(scope_for(app, path) | {"app": app, "litestar_app": app, "route_handler": None})


async def item_parts(app: Any, settings: Settings, public_id: str, timer: Timer) -> list[tuple[str, float]]:
    """Fairshelf's item page, whole and in parts; and the reference app (the same statements through psycopg)."""
    from reference_item_app import ReferenceApp

    from app.catalog import items
    from app.catalog.views import thumb_url
    from app.discovery import pages

    path = f"/i/{public_id}"
    ref = ReferenceApp(settings)
    await ref.pool.open(wait=True)
    status, size = await call(app, path)
    ref_status, ref_size = await call(ref, path)
    assert status == ref_status == 200, (status, ref_status)
    log(f"bodies: Fairshelf {size} bytes, reference {ref_size} bytes")

    whole = await timer("Fairshelf: whole ASGI request", lambda: call(app, path), part=False)
    await timer("reference app: whole ASGI request", lambda: call(ref, path), part=False)

    async def queries() -> Any:
        async with app.state.read_pool.connection() as connection:
            shown = await items.public_item(connection, public_id, None)
            return shown, await pages.primary_file(connection, shown.item)

    await timer("  read pool: a connection, the item statement, the file statement", queries)
    shown, player = await queries()
    request = request_for(app, path)
    storage = app.state.storage
    cover = thumb_url(storage, *shown.cover, 1280) if shown.cover else None
    context = {"shown": shown, "item": shown.item, "cover": cover, "player": player, "preview": None,
               "files": [], "request": request, "csrf_input": "", "owns": False, "excerpt": None,
               "media_ok": True}

    async def render() -> Any:
        return app.template_engine.get_template("catalog/item.html").render(**context).encode()

    await timer("  Jinja: catalog/item.html with Litestar's environment", render)
    if shown.cover:
        await timer("  the cover URL (HMAC-signed, 1 per page)", lambda: _async(thumb_url, storage, *shown.cover, 1280))
    await ref.pool.close()
    return [("whole", whole["cpu_us"])]


async def _async(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


async def creator_parts(app: Any, username: str, timer: Timer) -> None:
    from app.catalog.models import Item
    from app.catalog.views import cover_url
    from app.discovery import pages
    from app.discovery.listing import list_items
    from app.discovery.routes import EMPTY, list_context

    path = f"/@{username}"
    status, size = await call(app, path)
    assert status == 200, status
    log(f"body: {size} bytes")
    sessionmaker = app.state.sessionmaker
    await timer("Fairshelf: whole ASGI request", lambda: call(app, path), part=False)

    async def orm() -> Any:
        async with sessionmaker() as db:
            shown = await pages.profile(db, "@" + username)
            return shown, await list_items(db, [Item.creator_id == shown.user.id])

    await timer("  SQLAlchemy: session, ping, 4 queries, entities and rows, close", orm)
    shown, page = await orm()
    request = request_for(app, path)
    covered = sum(1 for c in page.cards if c.cover_id)

    async def sign() -> Any:
        cover_url(request, shown.avatar, 320)
        return list_context(request, page)

    await timer(f"  {covered + 1} signed cover URLs and the next-page cursor link", sign)
    context = {"shown": shown, "person": shown.user, "avatar": cover_url(request, shown.avatar, 320),
               "empty": EMPTY, **list_context(request, page), "request": request, "csrf_input": ""}
    engine = app.template_engine

    async def render() -> Any:
        return engine.get_template("discovery/profile.html").render(**context).encode()

    await timer(f"  Jinja: discovery/profile.html ({len(page.cards)} cards)", render)


async def measure(url: str, args: argparse.Namespace,
                  catalogue: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from app.main import create_app

    settings = Settings(mode="development", secret_key=SECRET_KEY, database_url=url, page_cache_seconds=0,
                        base_url="http://127.0.0.1:8000")
    app = create_app(settings)
    for hook in app.on_startup:  # what the server's lifespan does first (the item page's read pool)
        await hook()
    timer = Timer(args.requests, args.warmup)
    if args.page == "item":
        await item_parts(app, settings, catalogue.item_public_id, timer)
        path = f"/i/{catalogue.item_public_id}"
    else:
        await creator_parts(app, catalogue.creator_username, timer)
        path = f"/@{catalogue.creator_username}"
    whole = timer.rows[0]
    parts = [r for r in timer.rows if r["part"]]
    timer.rows.append({"label": "  the rest: Litestar routing, DI, middleware, response, hooks",
                       "part": False, "cpu_us": whole["cpu_us"] - sum(r["cpu_us"] for r in parts),
                       "wall_us": float("nan")})
    if args.cprofile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            await call(app, path)
        profiler.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(40)
            print(out.getvalue())
    await app.state.engine.dispose()
    return timer.rows, []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--page", choices=("item", "creator"), default="item", help="which page (default item)")
    p.add_argument("--requests", type=int, default=2000, help="timed calls per line (default 2,000)")
    p.add_argument("--warmup", type=int, default=300, help="untimed calls before each line (default 300)")
    p.add_argument("--cprofile", action="store_true", help="also print cProfile's top functions (CPU time)")
    args = p.parse_args(argv)
    workdir = make_workdir("fairshelf-page-profile-")
    url = start_database(workdir, "fairshelf_page_profile")
    catalogue = build_catalogue(url)
    log(f"catalogue ready; {args.page} page, {args.requests} timed calls per line, one at a time")
    rows, endings = asyncio.run(measure(url, args, catalogue))
    print(f"\n{'per request':<74} {'CPU µs':>8} {'wall µs':>8}")
    for r in rows:
        print(f"{r['label']:<74} {r['cpu_us']:>8.0f} {r['wall_us']:>8.0f}")
    if endings:
        print(f"\n{'the 5 SELECTs through psycopg, then':<36} {'CPU µs':>8} {'PostgreSQL µs':>13} "
              f"{'wall µs':>8}  prepared statements kept")
        for e in endings:
            how = {"rollback": "ROLLBACK (as every GET now)", "commit": "COMMIT",
                   "autocommit": "nothing (autocommit, no BEGIN)"}[e["ending"]]
            print(f"{how:<36} {e['cpu_us']:>8.0f} {e['postgres_us']:>13.0f} {e['wall_us']:>8.0f}  "
                  f"{e['prepared']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
