"""Public pages that survive a flash crowd.

A route marked `opt=PUBLIC_PAGE` is the same for every anonymous visitor: it is rendered without a CSRF token
or cookies, answered with a strong ETag (304 when it matches) and `Cache-Control: public` with
stale-while-revalidate, and kept for a moment in a per-process micro-cache. While one request renders a page,
everyone else asking for it waits for that render (or gets the previous copy) instead of rendering it again:
a thousand simultaneous requests cost one render. Anyone signed in (or with a message waiting) gets the page
rendered for them, with a CSRF token, marked private.

The cache is only an accelerator: if anything in it fails, the request is rendered from PostgreSQL as usual.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from litestar import HttpMethod, route
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter

from app.accounts.auth import scope_cookie
from app.accounts.sessions import cookie_name
from app.db.engine import provide_reader
from app.web.flash import COOKIE as FLASH_COOKIE

log = logging.getLogger("fairshelf.cache")

PUBLIC_PAGE = {"public_page": True, "exclude_from_csrf": True}


def public_page(path: str, counts_views: str | None = None, **kwargs: Any) -> Any:
    """Route decorator for a public page: GET and HEAD (crawlers and podcast apps ask with HEAD), cacheable, and
    reading the database without a transaction around it (public pages never write). `counts_views` names the
    path parameter holding an item id whose views the page counts (cached answers included)."""
    opt = {**PUBLIC_PAGE, "counts_views": counts_views} if counts_views else PUBLIC_PAGE
    return route(path, http_method=[HttpMethod.GET, HttpMethod.HEAD], opt=opt,
                 dependencies={"db": Provide(provide_reader)}, **kwargs)
BROWSER_CACHE = b"public, max-age=30, stale-while-revalidate=300"
PERSONAL = b"private, no-cache"
VARY = b"HX-Request, HX-History-Restore-Request, Cookie"
KEY_HEADERS = (b"hx-request", b"hx-history-restore-request")  # what the pages vary on (see VARY)
LARGEST_BODY = 1024 * 1024
RESULTS = ("hit", "stale", "coalesced", "miss", "personal")


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    stored: float


class PageCache:
    """Rendered anonymous pages by URL (and HTMX headers), fresh for `fresh` seconds, then served stale for up to
    `stale` seconds while one request renders the new copy."""

    def __init__(self, fresh: float, stale: float, counter: Counter, max_entries: int = 2000) -> None:
        self.fresh, self.stale, self.max_entries = fresh, stale, max_entries
        self.entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self.renders: dict[tuple[Any, ...], asyncio.Future[Entry | None]] = {}
        self._counters = {result: counter.labels(result) for result in RESULTS}

    def count(self, result: str) -> None:
        self._counters[result].inc()

    @property
    def enabled(self) -> bool:
        return self.fresh > 0

    def get(self, key: tuple[Any, ...], now: float) -> tuple[Entry | None, bool]:
        """The stored page (if still usable) and whether it is fresh."""
        entry = self.entries.get(key)
        if entry is None:
            return None, False
        age = now - entry.stored
        if age > self.fresh + self.stale:
            del self.entries[key]
            return None, False
        self.entries.move_to_end(key)
        return entry, age <= self.fresh

    def put(self, key: tuple[Any, ...], entry: Entry) -> None:
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


async def _render(app: ASGIApp, scope: Scope, receive: Receive) -> Entry:
    """Run the route and collect its whole response."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def collect(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collect)
    body = b"".join(chunks)
    etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
    headers = [(k.lower(), v) for k, v in start.get("headers", [])]
    return Entry(start.get("status", 500), headers, body, etag, time.monotonic())


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return etag in tags or b"*" in tags


async def _send(entry: Entry, scope: Scope, send: Send, cache_control: bytes) -> None:
    """Send a collected response; 200s get their ETag and caching headers, and a 304 when the browser has it."""
    headers = [(k, v) for k, v in entry.headers if k not in (b"cache-control", b"vary", b"etag", b"content-length")]
    status, body = entry.status, entry.body
    if status == 200:
        headers += [(b"etag", entry.etag), (b"cache-control", cache_control), (b"vary", VARY)]
        if _matches(_header(scope, b"if-none-match"), entry.etag):
            status, body = 304, b""
            headers = [(k, v) for k, v in headers if k != b"content-type"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _storable(entry: Entry) -> bool:
    return (entry.status == 200 and len(entry.body) <= LARGEST_BODY
            and not any(k == b"set-cookie" for k, _ in entry.headers))


def page_cache_middleware(app: ASGIApp, csrf_config: CSRFConfig) -> ASGIApp:
    # Public pages skip the app-wide CSRF middleware (see PUBLIC_PAGE); for signed-in people this one puts it
    # back, so their pages carry a token for the forms on them (log out, and so on).
    personal = CSRFMiddleware(app, replace(csrf_config, exclude_from_csrf_key="_csrf_never_skipped"))

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if scope["method"] not in ("GET", "HEAD") or handler is None or not handler.opt.get("public_page"):
            await app(scope, receive, send)
            return
        counts = handler.opt.get("counts_views")
        if counts and scope["method"] == "GET" and not _header(scope, b"hx-request"):
            # A person looking at the page (not a HEAD probe or a fragment): in memory, written in batches.
            scope["app"].state.item_counter.add(scope["path_params"].get(counts, ""), "views")
        if scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}  # rendered in full (and cached) as for GET; _send drops the body
            original_send = send

            async def send(message: Message) -> None:  # noqa: F811 - the same send, minus the body
                if message["type"] == "http.response.body":
                    message = {**message, "body": b""}
                await original_send(message)
        state = scope["app"].state
        cache: PageCache = state.page_cache
        if any(scope_cookie(scope, name) for name in (cookie_name(state.settings), FLASH_COOKIE)):
            cache.count("personal")
            await _send(await _render(personal, scope, receive), scope, send, PERSONAL)
            return
        await _anonymous(app, cache, scope, receive, send)

    return middleware


async def _anonymous(app: ASGIApp, cache: PageCache, scope: Scope, receive: Receive, send: Send) -> None:
    if not cache.enabled:
        await _send(await _render(app, scope, receive), scope, send, BROWSER_CACHE)
        return
    key = (scope["path"], scope.get("query_string", b""), *(_header(scope, h) for h in KEY_HEADERS))
    entry, fresh = cache.get(key, time.monotonic())
    leader = cache.renders.get(key)
    if entry is not None and (fresh or leader is not None):
        cache.count("hit" if fresh else "stale")
        await _send(entry, scope, send, BROWSER_CACHE)
        return
    if leader is not None:
        cache.count("coalesced")
        shared = await asyncio.shield(leader)
        if shared is not None:
            await _send(shared, scope, send, BROWSER_CACHE)
            return
        entry = await _render(app, scope, receive)  # the render we waited for could not be shared
        await _send(entry, scope, send, BROWSER_CACHE)
        return
    cache.count("miss")
    future: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
    cache.renders[key] = future
    fresh_entry: Entry | None = None
    try:
        fresh_entry = await _render(app, scope, receive)
        if _storable(fresh_entry):
            cache.put(key, fresh_entry)
    finally:
        del cache.renders[key]
        future.set_result(fresh_entry if fresh_entry is not None and _storable(fresh_entry) else None)
    await _send(fresh_entry, scope, send, BROWSER_CACHE)
