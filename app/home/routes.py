"""The home page."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from app.catalog import items
from app.catalog.views import cover_url
from app.db.engine import Db


@get("/")
async def home(request: Request[Any, Any, Any], db: Db) -> Template:
    cards = await items.newest_published(db)
    return Template(template_name="home/index.html", context={
        "cards": [(card, cover_url(request, card.cover, 320)) for card in cards],
    })


ROUTES = [home]
