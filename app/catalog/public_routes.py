"""An item's permanent page, /i/<public id>, its slugged alias, and the addresses its media play from."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Response, get, route
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.auth import current_user
from app.catalog import items
from app.catalog.views import Req, thumb_url
from app.db.engine import Db
from app.discovery import pages
from app.media import uploads
from app.web.caching import public_page
from app.web.errors import Forbidden, NotFound

# A link to a file lives long enough to fetch it at a slow connection's pace (≈100 kB/s), within bounds.
LINK_FLOOR, LINK_CEILING, SLOW_BYTES_PER_SECOND = 10 * 60, 4 * 3600, 100_000


@public_page("/i/{public_id:str}")
async def item_page(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    viewer = current_user(request)
    shown = await items.public_item(db, public_id, viewer.id if viewer else None)
    item = shown.item
    playable = shown.is_owner or item.price_mode == "free"
    player = await pages.primary_file(db, item) if playable and item.type in ("audio", "video") else None
    preview = await pages.primary_file(db, item, preview=True) if player is None else None
    return Template(template_name="catalog/item.html", context={
        "shown": shown, "item": item,
        "cover": thumb_url(request.app.state.storage, *shown.cover, 1280) if shown.cover else None,
        "player": player, "preview": preview,
        "files": await uploads.for_item(db, item.id) if shown.is_owner else [],
    })


@get("/i/{public_id:str}/{slug:str}")
async def item_alias(public_id: FromPath[str], slug: FromPath[str]) -> Response[Any]:
    """Slugged links are for people to read; they all lead to the one permanent address."""
    return Redirect(f"/i/{public_id}", status_code=301)


def file_link(request: Req, upload: Any, disposition: str = "inline") -> Redirect:
    ttl = min(LINK_CEILING, max(LINK_FLOOR, upload.size_bytes // SLOW_BYTES_PER_SECOND))
    url = request.app.state.storage.signed_url(
        upload.storage_key, filename=upload.filename, content_type=upload.mime or "application/octet-stream",
        ttl_seconds=ttl, disposition=disposition,  # type: ignore[arg-type]
    )
    return Redirect(url, status_code=302, headers={"Cache-Control": "private, no-store"})


@route("/i/{public_id:str}/stream", http_method=[HttpMethod.GET, HttpMethod.HEAD])  # podcast apps ask with HEAD
async def stream(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    """Play a free item (or your own): a short-lived signed link to the file, which supports Range."""
    viewer = current_user(request)
    shown = await items.public_item(db, public_id, viewer.id if viewer else None)
    if not (shown.is_owner or shown.item.price_mode == "free"):
        raise Forbidden("This item is for sale: buy it to play or download it.")
    upload = await pages.primary_file(db, shown.item)
    if upload is None:
        raise NotFound("This item has no file to play yet.")
    return file_link(request, upload)


@route("/i/{public_id:str}/preview", http_method=[HttpMethod.GET, HttpMethod.HEAD])
async def preview(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    """The preview clip the creator chose, for anyone who can see the item."""
    viewer = current_user(request)
    shown = await items.public_item(db, public_id, viewer.id if viewer else None)
    upload = await pages.primary_file(db, shown.item, preview=True)
    if upload is None:
        raise NotFound("This item has no preview.")
    return file_link(request, upload)


ROUTES = [item_page, item_alias, stream, preview]
