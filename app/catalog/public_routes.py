"""An item's permanent page, /i/<public id>, and its slugged alias."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.auth import current_user
from app.catalog import items
from app.catalog.forms import tags_for_display
from app.catalog.views import Req, cover_url
from app.db.engine import Db
from app.media import uploads
from app.web.text import format_money


@get("/i/{public_id:str}")
async def item_page(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    viewer = current_user(request)
    shown = await items.public_item(db, public_id, viewer.id if viewer else None)
    item = shown.item
    return Template(template_name="catalog/item.html", context={
        "shown": shown, "item": item, "cover": cover_url(request, shown.cover, 1280),
        "tags": [(t, t.replace(".", "/").replace("_", " ")) for t in item.tags],
        "tag_text": tags_for_display(item.tags), "format_money": format_money,
        "files": await uploads.for_item(db, item.id) if shown.is_owner else [],
    })


@get("/i/{public_id:str}/{slug:str}")
async def item_alias(public_id: FromPath[str], slug: FromPath[str]) -> Response[Any]:
    """Slugged links are for people to read; they all lead to the one permanent address."""
    return Redirect(f"/i/{public_id}", status_code=301)


ROUTES = [item_page, item_alias]
