"""Public lists of items: newest, popular, best-selling, by price, by tag, by creator and by project — every one
keyset-paginated over a partial index of listed items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, cast, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Item, LTree
from app.media.models import Upload
from app.web import pagination

# A literal, not a bound parameter: the partial indexes say "WHERE status = 'published'", and a generic plan for
# "status = $1" could not use them.
LISTED = and_(Item.status == literal_column("'published'"), Item.deleted_at.is_(None))


def tagged_under(path: str, *, literal: bool = False) -> ColumnElement[bool]:
    """Items with a tag at or below `path` (ltree[] <@ ltree, answered by the GiST index on tags); `literal`
    writes the path into the statement instead of sending it as a parameter."""
    value = bindparam(None, path, type_=String, literal_execute=True) if literal else path
    return Item.tags.op("<@")(cast(value, LTree()))


@dataclass(frozen=True, slots=True)
class Card:
    """What a list shows of an item."""

    id: int
    public_id: str
    title: str
    type: str
    price_mode: str
    price_cents: int
    currency: str
    published_at: datetime
    creator_name: str
    creator_username: str
    cover_id: str | None
    cover_sizes: list[int]
    snippet: str = ""  # search only: the matching passage, already escaped, with <mark>s


@dataclass(frozen=True, slots=True)
class Page:
    cards: list[Card]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Sort:
    """An order of listed items; the last key is always the id, so the order is total and cursors are exact."""

    label: str
    keys: tuple[Any, ...]
    kinds: tuple[type, ...]
    descending: bool = True

    def order_by(self) -> list[ColumnElement[Any]]:
        return [k.desc() if self.descending else k.asc() for k in self.keys]

    def after(self, cursor: tuple[Any, ...]) -> ColumnElement[bool]:
        row = tuple_(*self.keys)
        return row < tuple_(*cursor) if self.descending else row > tuple_(*cursor)


SORTS = {
    "new": Sort("Newest", (Item.published_at, Item.id), (datetime, int)),
    "popular": Sort("Popular", (Item.recent_sales, Item.id), (int, int)),
    "sales": Sort("Best-selling", (Item.sales_count, Item.id), (int, int)),
    "price_asc": Sort("Price: low to high", (Item.price_cents, Item.id), (int, int), descending=False),
    "price_desc": Sort("Price: high to low", (Item.price_cents, Item.id), (int, int)),
}

CARD_COLUMNS = (
    Item.id, Item.public_id, Item.title, Item.type, Item.price_mode, Item.price_cents, Item.currency,
    Item.published_at, User.display_name, User.username, Upload.public_id, Upload.thumbnails,
)


def card_query(*columns: Any) -> Select[Any]:
    """Listed items with what a card needs: who made them and their cover (when it is ready)."""
    return (
        select(*CARD_COLUMNS, *columns)
        .join(User, User.id == Item.creator_id)
        .outerjoin(Upload, and_(Upload.id == Item.cover_upload_id, Upload.state == "ready",
                                Upload.deleted_at.is_(None)))
        .where(LISTED)
    )


def card(row: Any, snippet: str = "") -> Card:
    return Card(*row[:len(CARD_COLUMNS) - 1], cover_sizes=row[len(CARD_COLUMNS) - 1] or [], snippet=snippet)


async def list_items(db: AsyncSession, where: list[ColumnElement[bool]], *, sort: str = "new",
                     cursor: str | None = None, size: int = 24) -> Page:
    """One page of listed items matching `where`, in the given order, after `cursor`."""
    order = SORTS[sort]
    after = pagination.decode(cursor, order.kinds)
    extra = [k for k in order.keys if k not in CARD_COLUMNS]
    query = card_query(*extra).where(*where).order_by(*order.order_by()).limit(size + 1)
    if after is not None:
        query = query.where(order.after(after))
    rows = (await db.execute(query)).all()
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = pagination.encode(tuple(rows[-1]._mapping[k] for k in order.keys)) if more and rows else None
    return Page([card(row) for row in rows], next_cursor)
