"""An item's permanent page, /i/<public id>, its slugged alias, and the addresses its media play from."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Response, get, route
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.auth import current_user
from app.catalog import items
from app.catalog.views import Req, thumb_url
from app.checkout import orders
from app.db.engine import Db, Reads
from app.discovery import pages
from app.media import uploads
from app.media.links import file_link
from app.web.caching import public_page
from app.web.errors import NotFound
from app.web.text import excerpt_markdown, render_markdown


@public_page("/i/{public_id:str}", counts_views="public_id")
async def item_page(request: Req, reads: Reads, public_id: FromPath[str]) -> Template:
    # The busiest page reads on a plain pooled connection, through compiled statements only (see make_read_pool).
    viewer = current_user(request)
    shown = await items.public_item(reads, public_id, viewer.id if viewer else None)
    item = shown.item
    # Anonymous visitors (the cached page) own nothing; a signed-in buyer sees their copy.
    owns = shown.is_owner or (viewer is not None and await orders.entitled(reads, viewer.id, item.id))
    playable = owns or item.price_mode == "free"
    player = await pages.primary_file(reads, item) if playable and item.type in ("audio", "video") else None
    preview = await pages.primary_file(reads, item, preview=True) if player is None else None
    excerpt = None
    if item.type == "text" and not playable:
        excerpt = render_markdown(excerpt_markdown(item.body_start))
    return Template(template_name="catalog/item.html", context={
        "shown": shown, "item": item, "owns": owns, "excerpt": excerpt,
        "media_ok": request.app.state.storage_breaker.available,
        "cover": thumb_url(request.app.state.storage, *shown.cover, 1280) if shown.cover else None,
        "player": player, "preview": preview,
        "files": await uploads.for_item_page(request.app.state.reader, item.id) if shown.is_owner else [],
    })


@get("/i/{public_id:str}/{slug:str}")
async def item_alias(public_id: FromPath[str], slug: FromPath[str]) -> Response[Any]:
    """Slugged links are for people to read; they all lead to the one permanent address."""
    return Redirect(f"/i/{public_id}", status_code=301)


@route("/i/{public_id:str}/preview", http_method=[HttpMethod.GET, HttpMethod.HEAD])
async def preview(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    """The preview clip the creator chose, for anyone who can see the item."""
    viewer = current_user(request)
    shown = await items.public_item(db, public_id, viewer.id if viewer else None)
    upload = await pages.primary_file(db, shown.item, preview=True)
    if upload is None:
        raise NotFound("This item has no preview.")
    return file_link(request, upload)


ROUTES = [item_page, item_alias, preview]
