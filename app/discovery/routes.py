"""Public pages: home, creator profiles (/@username), projects, tags, and search with type-ahead.

Every handler here is a PUBLIC_PAGE (cacheable for visitors, see app/web/caching.py). On an HTMX request a list
answers with just its fragment: the next cards when a cursor is given ("load more"), the results when searching.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.catalog.forms import tag_path
from app.catalog.models import ITEM_TYPES, Item
from app.catalog.views import Req, cover_url, thumb_url
from app.db.engine import Db
from app.discovery import pages
from app.discovery import search as searching
from app.discovery.listing import Page, list_items, tagged_under
from app.web.caching import public_page
from app.web.errors import NotFound


def fragment_wanted(request: Req) -> bool:
    """An HTMX request that wants a piece of the page (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def covers(request: Req, page: Page, size: int = 320) -> dict[int, str | None]:
    storage = request.app.state.storage
    return {card.id: thumb_url(storage, card.cover_id, card.cover_sizes, size) for card in page.cards}


def list_context(request: Req, page: Page, **params: str) -> dict[str, Any]:
    """What _cards.html needs: the cards, their covers, and the link to the next page (keeping `params`)."""
    more = f"{request.url.path}?{urlencode({**params, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    return {"page": page, "covers": covers(request, page), "more_href": more}


def list_page(request: Req, template: str, page: Page, context: dict[str, Any], **params: str) -> Template:
    """The whole page, or (HTMX "load more") only the next cards."""
    cards = list_context(request, page, **params)
    if fragment_wanted(request) and request.query_params.get("cursor"):
        return Template(template_name="discovery/_cards.html", context=cards)
    return Template(template_name=template, context={**context, **cards})


@public_page("/")
async def home(request: Req, db: Db) -> Template:
    new = await list_items(db, [], sort="new", size=12)
    popular = await list_items(db, [Item.recent_sales > 0], sort="popular", size=12)
    return Template(template_name="discovery/home.html", context={
        "new": new, "popular": popular, "covers": covers(request, new) | covers(request, popular),
        "tags": await pages.top_tags(db),
    })


EMPTY = "Nothing published here yet."


@public_page("/{handle:str}")
async def creator_page(request: Req, db: Db, handle: FromPath[str], cursor: FromQuery[str | None] = None) -> Template:
    shown = await pages.profile(db, handle)
    page = await list_items(db, [Item.creator_id == shown.user.id], cursor=cursor)
    return list_page(request, "discovery/profile.html", page, {
        "shown": shown, "person": shown.user, "avatar": cover_url(request, shown.avatar, 320), "empty": EMPTY,
    })


@public_page("/{handle:str}/{slug:str}")
async def project_page(request: Req, db: Db, handle: FromPath[str], slug: FromPath[str],
                       cursor: FromQuery[str | None] = None) -> Template:
    person, project, cover = await pages.project(db, handle, slug)
    page = await list_items(db, [Item.project_id == project.id], cursor=cursor)
    return list_page(request, "discovery/project.html", page, {
        "person": person, "project": project, "cover": cover_url(request, cover, 640), "empty": EMPTY,
    })


@public_page("/t/{path:path}")
async def tag_page(request: Req, db: Db, path: FromPath[str], cursor: FromQuery[str | None] = None) -> Template:
    wanted = tag_path(path[:300])
    if wanted is None:
        raise NotFound("There is no such tag.")
    tag = await pages.tag(db, wanted)
    page = await list_items(db, [tagged_under(wanted)], cursor=cursor)
    return list_page(request, "discovery/tag.html", page, {"tag": tag, "empty": EMPTY})


@public_page("/search")
async def search_page(request: Req, db: Db) -> Template:
    search = searching.Search.from_params({k: v for k, v in request.query_params.items() if isinstance(v, str)})
    results = await searching.run(db, search)
    cards = list_context(request, results.page, **search.params())
    if fragment_wanted(request) and search.cursor:
        return Template(template_name="discovery/_cards.html", context=cards)
    context = {
        **cards, "search": search, "results": results, "count_cap": searching.COUNT_CAP,
        # The results are the items; creators and tags that match are offered beside them.
        "suggestions": await searching.suggest(db, search.q, titles=False) if search.q and not search.cursor else None,
        "item_types": ITEM_TYPES, "price_filters": searching.PRICE_FILTERS, "sorts": searching.SEARCH_SORTS,
        "empty": "",
    }
    if fragment_wanted(request):
        return Template(template_name="discovery/_results.html", context=context)
    return Template(template_name="discovery/search.html", context=context)


@public_page("/search/suggest")
async def suggest(request: Req, db: Db, q: FromQuery[str] = "") -> Template | Redirect:
    if not fragment_wanted(request):
        return Redirect(f"/search?{urlencode({'q': q[:200]})}", status_code=303)
    return Template(template_name="discovery/_suggest.html", context={
        "found": await searching.suggest(db, q), "q": " ".join(q[:200].split()),
    })


ROUTES = [home, search_page, suggest, tag_page, creator_page, project_page]
