"""Atom feeds for creators and projects, the sitemap, and robots.txt."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from litestar.params import FromPath
from litestar.response import Template

from app.catalog.views import Req
from app.db.engine import Db
from app.discovery import pages
from app.web.caching import public_page
from app.web.errors import NotFound

ATOM = "application/atom+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"


def _feed(request: Req, items: list, enclosures: dict, *, title: str, page_path: str, author: str) -> Template:
    updated = max((i.updated_at for i in items), default=datetime(2026, 1, 1, tzinfo=UTC))
    return Template(template_name="discovery/feed.atom.xml", media_type=ATOM, context={
        "items": items, "enclosures": enclosures, "title": title, "page_path": page_path, "author": author,
        "feed_path": request.url.path, "updated": updated,
    })


@public_page("/{handle:str}/feed.atom")
async def creator_feed(request: Req, db: Db, handle: FromPath[str]) -> Template:
    shown = await pages.profile(db, handle)
    items = await pages.feed_items(db, shown.user.id)
    return _feed(request, items, await pages.free_audio(db, items), title=shown.user.display_name,
                 page_path=f"/@{shown.user.username}", author=shown.user.display_name)


@public_page("/{handle:str}/{slug:str}/feed.atom")
async def project_feed(request: Req, db: Db, handle: FromPath[str], slug: FromPath[str]) -> Template:
    person, project, _ = await pages.project(db, handle, slug)
    items = await pages.feed_items(db, person.id, project.id)
    return _feed(request, items, await pages.free_audio(db, items), title=f"{project.name} — {person.display_name}",
                 page_path=f"/@{person.username}/{project.slug}", author=person.display_name)


@public_page("/sitemap.xml")
async def sitemap_index(db: Db) -> Template:
    return Template(template_name="discovery/sitemap_index.xml", media_type=XML,
                    context={"blocks": await pages.sitemap_blocks(db)})


@public_page("/sitemaps/people.xml")
async def sitemap_people(db: Db) -> Template:
    urls = [(f"/@{user}" + (f"/{slug}" if slug else ""), when) for user, slug, when in await pages.sitemap_people(db)]
    return Template(template_name="discovery/sitemap.xml", media_type=XML, context={"urls": [("/", None), *urls]})


@public_page("/sitemaps/items/{name:str}")
async def sitemap_items(db: Db, name: FromPath[str]) -> Template:
    block = re.fullmatch(r"(\d{1,7})\.xml", name)
    urls = [(f"/i/{p}", when) for p, when in await pages.sitemap_items(db, int(block[1]))] if block else []
    if not urls:
        raise NotFound("There is no such sitemap.")
    return Template(template_name="discovery/sitemap.xml", media_type=XML, context={"urls": urls})


@public_page("/robots.txt")
async def robots() -> Template:
    return Template(template_name="discovery/robots.txt", media_type="text/plain")  # Litestar adds the charset


ROUTES = [creator_feed, project_feed, sitemap_index, sitemap_people, sitemap_items, robots]
