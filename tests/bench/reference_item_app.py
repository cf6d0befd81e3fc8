"""A minimal ASGI app that serves /i/<public id> the way Fairshelf does, without Litestar or SQLAlchemy: the
yardstick item_page.py measures Fairshelf against.

It sends PostgreSQL the same statements, in the same order, as Fairshelf sends for an anonymous visitor
(item_page.py checks this in PostgreSQL's log): SQLAlchemy's pre-ping (';' in autocommit), then BEGIN, the
item with its creator, its project, its cover, its versions, the file to play (free audio/video) or the
preview clip, then ROLLBACK. It renders the same template (templates/catalog/item.html) with the app's own
Jinja environment (app.web.templating.make_environment) and signs the cover URL with the app's storage, so the
body is the same bytes. It answers with the same headers: the page cache's ETag, Cache-Control and Vary, and
the security headers.

What it leaves out is what the comparison is about: Litestar (routing, middleware, dependency injection, the
template response, before_send hooks), the page-cache and metrics middleware, and SQLAlchemy (Core statement
compilation, the ORM session, identity map and entity loading, its pool).

Served by item_page.py as `granian --interface asgi --factory reference_item_app:app_from_env` with the same
environment as the app (DATABASE_URL, DB_POOL_SIZE, DB_MAX_OVERFLOW, SECRET_KEY, BASE_URL, MODE).
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool

from app.catalog.items import PAGE_COLUMNS
from app.catalog.views import thumb_url
from app.media.storage import LocalStorage
from app.settings import Settings
from app.web.caching import BROWSER_CACHE, VARY
from app.web.security import HEADERS as SECURITY_HEADERS
from app.web.templating import make_environment
from app.web.text import excerpt_markdown, render_markdown

# Every column of each entity, in the order SQLAlchemy selects them.
ITEM_COLUMNS = (
    "public_id", "creator_id", "project_id", "type", "subtype", "title", "slug", "description_md",
    "description_html", "body_md", "body_html", "chapters", "cover_upload_id", "price_mode", "price_cents",
    "min_price_cents", "suggested_price_cents", "currency", "tags", "release_date", "credits", "ai_label",
    "preview_upload_id", "status", "sales_count", "recent_sales", "wizard_step", "published_at", "deleted_at",
    "updated_at", "id", "created_at",
)
USER_COLUMNS = ("email", "username", "display_name", "password_hash", "email_verified_at",
                "password_changed_at", "is_admin", "id", "created_at")
PROJECT_COLUMNS = ("public_id", "creator_id", "name", "slug", "description_md", "description_html",
                   "cover_upload_id", "updated_at", "id", "created_at")
UPLOAD_COLUMNS = ("public_id", "creator_id", "item_id", "version_id", "purpose", "filename", "size_bytes",
                  "state", "reason", "temp_path", "storage_key", "mime", "sha256", "meta", "thumbnails",
                  "attempts", "updated_at", "deleted_at", "id", "created_at")
VERSION_COLUMNS = ("item_id", "label", "changelog", "published_at", "id", "created_at")


def _columns(table: str, names: tuple[str, ...], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    out = []
    for name in names:
        expr = "CAST(items.tags AS TEXT[])" if (table, name) == ("items", "tags") else f"{table}.{name}"
        if (table, name) == ("items", "tags"):
            expr += " AS tags"
        elif name in labels:
            expr += f" AS {labels[name]}"
        out.append(expr)
    return ", ".join(out)


# The statements SQLAlchemy compiles for app.catalog.items.public_item and app.discovery.pages.primary_file,
# as PostgreSQL receives them (item_page.py compares both sides' logged statements). The item page's one
# statement is compiled here, once, from the app's own query builder; at request time only psycopg runs.
def _sql() -> tuple[tuple[str, dict[str, Any]], ...]:
    from app.catalog.items import PUBLIC_ITEM
    from app.discovery.pages import PREVIEW_FILE, PRIMARY_FILE

    return tuple((c.sql, c.defaults) for c in (PUBLIC_ITEM, PRIMARY_FILE, PREVIEW_FILE))


(ITEM_SQL, ITEM_PARAMS), (PRIMARY_FILE_SQL, PRIMARY_FILE_PARAMS), (PREVIEW_FILE_SQL, PREVIEW_FILE_PARAMS) = _sql()
ITEM_PARAM = "public_id"
PUBLIC_STATUSES = ("published", "unlisted")
NOT_FOUND = b"Not found"


def _row(names: tuple[str, ...], values: Any) -> SimpleNamespace | None:
    """A row as an object with attributes, as the template reads ORM entities."""
    return None if values is None else SimpleNamespace(**dict(zip(names, values, strict=True)))


async def _one(conn: AsyncConnection[Any], names: tuple[str, ...], sql: str,
               *params: Any) -> SimpleNamespace | None:
    return _row(names, await (await conn.execute(sql, params)).fetchone())


class ReferenceApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = make_environment(settings)
        # What Litestar would supply: no CSRF token on a public page, no signed-in viewer, no flash messages.
        self.env.globals.update(csrf_token=lambda: "", viewer=lambda request: None,
                                get_flashes=lambda request: [])
        self.storage = LocalStorage(settings.var_dir / "media", settings.secret_key)
        self.pool = AsyncConnectionPool(
            settings.libpq_url, min_size=settings.db_pool_size,
            max_size=settings.db_pool_size + settings.db_max_overflow,
            kwargs={"application_name": "fairshelf-reference"}, open=False,
        )
        self.static_headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.pool.open(wait=True)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/health":
            async with self.pool.connection() as conn:
                await conn.execute("SELECT 1")
            await self._send(send, 200, b"ok", b"text/plain", extra=[(b"cache-control", b"no-store")])
            return
        public_id = path[3:] if path.startswith("/i/") else ""
        body = await self.item_page(public_id) if public_id and "/" not in public_id else None
        if body is None:
            await self._send(send, 404, NOT_FOUND, b"text/plain")
            return
        etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
        status = 200
        if any(t.strip().removeprefix(b"W/") == etag for k, v in scope["headers"] if k == b"if-none-match"
               for t in v.split(b",")):
            status, body = 304, b""
        await self._send(send, status, body, b"text/html; charset=utf-8",
                         extra=[(b"etag", etag), (b"cache-control", BROWSER_CACHE), (b"vary", VARY)])

    async def _send(self, send: Any, status: int, body: bytes, content_type: bytes,
                    extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [(b"content-type", content_type), *(extra or []),
                   (b"content-length", str(len(body)).encode()), *self.static_headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def item_page(self, public_id: str) -> bytes | None:
        conn = await self.pool.getconn()
        try:
            # Public pages read in autocommit, as the app does (which pings only connections idle for 10 s).
            await conn.set_autocommit(True)
            cursor = conn.cursor(row_factory=namedtuple_row)
            row = await (await cursor.execute(ITEM_SQL, {**ITEM_PARAMS, ITEM_PARAM: public_id})).fetchone()
            if row is None:
                return None
            item = row
            if item.status not in PUBLIC_STATUSES:  # an anonymous visitor is never the owner
                return None
            columns = len(PAGE_COLUMNS)
            name, username, project_name, project_slug, cover_id, cover_sizes, versions = row[columns:]
            player = preview = None
            if item.price_mode == "free" and item.type in ("audio", "video"):
                kind = {"audio": "audio/", "video": "video/"}[item.type]
                player = await (await cursor.execute(
                    PRIMARY_FILE_SQL, {**PRIMARY_FILE_PARAMS, "item_id": item.id, "kind": kind})).fetchone()
            if player is None and item.preview_upload_id:
                preview = await (await cursor.execute(
                    PREVIEW_FILE_SQL, {**PREVIEW_FILE_PARAMS, "upload_id": item.preview_upload_id})).fetchone()
        finally:
            await self.pool.putconn(conn)
        cover_href = thumb_url(self.storage, cover_id, cover_sizes, 1280) if cover_id else None
        shown = SimpleNamespace(item=item, creator_name=name, creator_username=username,
                                project=(project_name, project_slug) if project_name else None,
                                versions=[v for v in versions if v["published"]], is_owner=False)
        # Looked up per request, as Litestar's template response does (with auto_reload outside production).
        excerpt = None
        if item.type == "text" and item.price_mode != "free":  # the page shows non-owners the opening only
            excerpt = render_markdown(excerpt_markdown(item.body_start))
        template = self.env.get_template("catalog/item.html")
        return template.render(shown=shown, item=item, cover=cover_href, player=player, preview=preview,
                               files=[], request=None, owns=False, excerpt=excerpt, media_ok=True).encode()


def app_from_env() -> ReferenceApp:
    """Entry point for Granian (--factory), with the settings the app would read."""
    return ReferenceApp(Settings.from_env())
