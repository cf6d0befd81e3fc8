"""Search in PostgreSQL: websearch_to_tsquery over the weighted document the database keeps, filters that
combine, keyset pages in every order, headlines for the shown rows only, and trigram suggestions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import BigInteger, ColumnElement, String, bindparam, cast, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.forms import tag_path
from app.catalog.models import ITEM_TYPES, Item
from app.discovery.listing import LISTED, SORTS, Card, Page, card, card_query, list_items, tagged_under
from app.web import pagination
from app.web.text import parse_money

MAX_QUERY = 200  # characters of a query we read; the rest of a 10 KB paste is ignored
# Relevance ranks at most this many matches: the most popular ones. A word found in a third of a million items
# would otherwise rank all of them for every page; past the first thousand nobody reads on.
CANDIDATES = 1000
COUNT_CAP = 1000
DEFAULT_SIZE = 24
ENGLISH = cast(literal("english"), REGCONFIG)
# ts_headline marks matches with characters nobody types (Unicode private use), so the passage can be escaped
# first and marked up afterwards; the same characters are removed from the text beforehand.
START, STOP = "\ue000", "\ue001"
MARKDOWN_NOISE = r"\]\([^)]*\)|[*_`#>\[\]|~]+"
HEADLINE_OPTIONS = f"StartSel={START}, StopSel={STOP}, MaxWords=28, MinWords=10, MaxFragments=2, FragmentDelimiter= … "
WORD = re.compile(r"[^\W\d_]{3,40}")

SEARCH_SORTS = {"": "Best match", **{key: sort.label for key, sort in SORTS.items()}}
PRICE_FILTERS = {"": "Any price", "free": "Free", "paid": "Paid"}


@dataclass(frozen=True, slots=True)
class Search:
    """What a person asked for, cleaned: anything typed is acceptable, unknown filter values are ignored."""

    q: str = ""
    type: str = ""
    price: str = ""
    min_cents: int | None = None
    max_cents: int | None = None
    tag: str = ""
    sort: str = "relevance"  # the order used: relevance, or newest when there are no words
    sort_asked: str = ""  # what the person chose ("" = best match)
    cursor: str | None = None
    size: int = 24
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Search:
        ignored: list[str] = []
        q = " ".join(params.get("q", "")[:MAX_QUERY].replace("\x00", " ").split())
        kind = params.get("type", "")
        if kind not in ITEM_TYPES:
            kind = ""
        price = params.get("price", "")
        if price not in PRICE_FILTERS:
            price = ""

        def money(name: str, label: str) -> int | None:
            raw = params.get(name, "").strip()[:20]
            cents = parse_money(raw) if raw else None
            if raw and cents is None:
                ignored.append(f"{label} “{raw}” is not an amount")
            return cents

        low, high = money("min", "Minimum price"), money("max", "Maximum price")
        tag = tag_path(params.get("tag", "")[:300]) or ""
        asked = params.get("sort", "")
        if asked not in SEARCH_SORTS:
            asked = ""
        sort = asked or ("relevance" if q else "new")
        return cls(q, kind, price, low, high, tag, sort, asked, params.get("cursor") or None,
                   pagination.page_size(params.get("size"), DEFAULT_SIZE), ignored)

    def filters(self) -> list[ColumnElement[bool]]:
        # Values are written into the statement (see tsquery): how selective a filter is decides the plan.
        where: list[ColumnElement[bool]] = []
        if self.type:
            where.append(Item.type == inline(self.type))
        if self.price == "free":
            where.append(Item.price_cents == inline(0))
        elif self.price == "paid":
            where.append(Item.price_cents > inline(0))
        if self.min_cents is not None:
            where.append(Item.price_cents >= inline(self.min_cents))
        if self.max_cents is not None:
            where.append(Item.price_cents <= inline(self.max_cents))
        if self.tag:
            where.append(tagged_under(self.tag, literal=True))
        return where

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this search (with changes), for links that keep the other filters."""
        values = {"q": self.q, "type": self.type, "price": self.price, "tag": self.tag, "sort": self.sort_asked,
                  "min": _money_param(self.min_cents), "max": _money_param(self.max_cents),
                  "size": str(self.size) if self.size != DEFAULT_SIZE else ""}
        values.update(changes)
        return {k: v for k, v in values.items() if v}


def _money_param(cents: int | None) -> str:
    return "" if cents is None else f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True, slots=True)
class Results:
    page: Page
    total: int  # capped at COUNT_CAP + 1
    did_you_mean: str = ""


def inline(value: str | int) -> ColumnElement[Any]:
    """A value rendered into the SQL text (escaped by SQLAlchemy) rather than sent as a parameter."""
    return bindparam(None, value, type_=String if isinstance(value, str) else BigInteger, literal_execute=True)


def tsquery(q: str) -> ColumnElement[Any]:
    # The words are written into the statement (escaped by SQLAlchemy) instead of sent as a parameter: with a
    # parameter, PostgreSQL settles on one generic plan after five executions, and a plan good for a rare word
    # takes seconds for a word found in a third of the catalogue (measured: 22 ms custom, 2 s generic).
    return func.websearch_to_tsquery(ENGLISH, inline(q))


async def run(db: AsyncSession, search: Search) -> Results:
    if not search.q:
        page = await list_items(db, search.filters(), sort=search.sort, cursor=search.cursor, size=search.size)
        total = await _count(db, search.filters())
        return Results(page, total)
    query = tsquery(search.q)
    matches = [Item.search_vector.op("@@")(query), *search.filters()]
    if search.sort == "relevance":
        page = await _by_relevance(db, search, query, matches)
    else:
        page = await list_items(db, matches, sort=search.sort, cursor=search.cursor, size=search.size)
        page = Page(await _with_snippets(db, page.cards, query), page.next_cursor)
    total = await _count(db, matches) if not search.cursor else -1
    hint = await did_you_mean(db, search.q) if total != -1 and total < 3 else ""
    return Results(page, total, hint)


async def _count(db: AsyncSession, where: list[ColumnElement[bool]]) -> int:
    limited = select(literal(1)).select_from(Item).where(LISTED, *where).limit(COUNT_CAP + 1).subquery()
    return int(await db.scalar(select(func.count()).select_from(limited)) or 0)


async def _by_relevance(db: AsyncSession, search: Search, query: ColumnElement[Any],
                        matches: list[ColumnElement[bool]]) -> Page:
    # Candidates: the most popular matches (walks ix_items_listed_popular when a word is everywhere, the GIN
    # index when it is rare), then ranked: title over creator and tags over description, nudged by popularity.
    candidates = (
        select(Item.id, Item.search_vector, Item.recent_sales).where(LISTED, *matches)
        .order_by(Item.recent_sales.desc(), Item.id.desc()).limit(CANDIDATES).cte("candidates")
    )
    score = (cast(func.ts_rank(candidates.c.search_vector, query), DOUBLE_PRECISION)
             * (1 + func.ln(1 + candidates.c.recent_sales) / 10)).label("score")
    ranked = select(candidates.c.id, score).subquery("ranked")
    after = pagination.decode(search.cursor, (float, int))
    page_ids = select(ranked.c.id, ranked.c.score).order_by(ranked.c.score.desc(), ranked.c.id.desc())
    if after is not None:
        page_ids = page_ids.where(tuple_(ranked.c.score, ranked.c.id) < tuple_(*after))
    chosen = page_ids.limit(search.size + 1).subquery("chosen")
    rows = (await db.execute(
        card_query(chosen.c.score, _headline(query)).join(chosen, chosen.c.id == Item.id)
        .order_by(chosen.c.score.desc(), chosen.c.id.desc())
    )).all()
    more = len(rows) > search.size
    rows = rows[:search.size]
    cursor = pagination.encode((rows[-1].score, rows[-1].id)) if more and rows else None
    return Page([card(row, snippet=_marked(row.headline)) for row in rows], cursor)


def _headline(query: ColumnElement[Any]) -> ColumnElement[str]:
    source = func.translate(
        func.regexp_replace(func.left(Item.description_md, 3000), MARKDOWN_NOISE, " ", "g"), START + STOP, ""
    )
    return func.ts_headline(ENGLISH, source, query, HEADLINE_OPTIONS).label("headline")


def _marked(headline: str | None) -> Markup:
    """The passage escaped as text, then its match markers turned into <mark> elements."""
    if not headline or START not in headline:
        return Markup("")
    return Markup(str(escape(headline)).replace(START, "<mark>").replace(STOP, "</mark>"))


async def _with_snippets(db: AsyncSession, cards: list[Card], query: ColumnElement[Any]) -> list[Card]:
    if not cards:
        return cards
    rows = await db.execute(select(Item.id, _headline(query)).where(Item.id.in_([c.id for c in cards])))
    snippets = {row.id: _marked(row.headline) for row in rows}
    return [replace(c, snippet=snippets.get(c.id, "")) for c in cards]


async def did_you_mean(db: AsyncSession, q: str) -> str:
    """The query with each unknown word replaced by the closest known one, or "" when there is nothing better."""
    words = WORD.findall(q.lower())[:6]
    if not words:
        return ""
    known = set(await db.scalars(text("SELECT word FROM search_words WHERE word = ANY(:w)"), {"w": words}))
    changed = q.lower()
    for word in set(words) - known:
        best = await db.scalar(text(
            "SELECT word FROM search_words WHERE word % :w ORDER BY similarity(word, :w) DESC, ndoc DESC LIMIT 1"
        ), {"w": word})
        if best:
            changed = re.sub(rf"\b{re.escape(word)}\b", best, changed)
    return changed if changed != q.lower() else ""


@dataclass(frozen=True, slots=True)
class Suggestions:
    items: list[tuple[str, str]]  # public id, title
    creators: list[tuple[str, str]]  # username, display name
    tags: list[tuple[str, int]]  # path, listed items under it

    def __bool__(self) -> bool:
        return bool(self.items or self.creators or self.tags)


def _like_prefix(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _titles_starting(db: AsyncSession, q: str, limit: int) -> list[tuple[str, str]]:
    # The first 50 titles in index order, then the most popular of them: bounded whatever the prefix.
    rows = await db.execute(text(
        "SELECT public_id, title FROM ("
        "  SELECT public_id, title, recent_sales, id FROM items"
        "  WHERE status = 'published' AND deleted_at IS NULL AND lower(title) COLLATE \"C\" LIKE :prefix"
        "  ORDER BY lower(title) COLLATE \"C\" LIMIT 50"
        ") AS starting ORDER BY recent_sales DESC, id DESC LIMIT :limit"
    ), {"prefix": _like_prefix(q), "limit": limit})
    return [(p, t) for p, t in rows]


async def suggest(db: AsyncSession, q: str, limit: int = 5, *, titles: bool = True) -> Suggestions:
    """Type-ahead: items and creators whose name starts with what has been typed so far, and matching tags.

    Each list is read in index order and bounded before it is ranked, so a common prefix costs what a rare one
    does. When no title starts that way, misspelt words are corrected from the word list (pg_trgm) first."""
    q = " ".join(q[:60].split()).lower()
    if len(q) < 2:
        return Suggestions([], [], [])
    items = await _titles_starting(db, q, limit) if titles else []
    if titles and not items and len(q) >= 3 and (corrected := await did_you_mean(db, q)):
        items = await _titles_starting(db, corrected, limit)
    creators = (await db.execute(text(
        "SELECT u.username, u.display_name FROM users u JOIN creators c ON c.user_id = u.id"
        " WHERE lower(u.display_name) COLLATE \"C\" LIKE :prefix OR u.username::text LIKE :prefix"
        " ORDER BY u.username = :q DESC, lower(u.display_name) COLLATE \"C\" LIMIT :limit"
    ), {"prefix": _like_prefix(q), "q": q[:30], "limit": limit})).all()
    tags = (await db.execute(text(
        "SELECT path::text AS path, items FROM tag_counts WHERE path::text ILIKE :like "
        "ORDER BY items DESC, path LIMIT :limit"
    ), {"like": "%" + _like_prefix(q.replace(" ", "_")), "limit": limit})).all()
    return Suggestions(items, [tuple(r) for r in creators], [tuple(r) for r in tags])
