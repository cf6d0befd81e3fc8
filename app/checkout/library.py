"""The library: everything a person owns, newest first, with every version's files and what is new since they
last downloaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Item, ItemVersion
from app.checkout.models import Entitlement, Order
from app.media.models import Upload
from app.web import pagination


@dataclass
class Owned:
    entitlement_id: int
    granted_at: datetime
    item: Any  # a row: public_id, title, type, creator name and username, cover
    order: Any  # public_id, amount_cents, currency — or None for a free claim
    versions: list[dict[str, Any]] = field(default_factory=list)
    new_version: bool = False


@dataclass(frozen=True, slots=True)
class LibraryPage:
    entries: list[Owned]
    next_cursor: str | None


async def library(db: AsyncSession, user_id: int, q: str = "", cursor: str | None = None,
                  size: int = 24) -> LibraryPage:
    after = pagination.decode(cursor, (datetime, int))
    query = (
        select(Entitlement.id, Entitlement.granted_at, Entitlement.last_downloaded_at, Item.id.label("item_id"),
               Item.public_id, Item.title, Item.type, Item.body_html, Item.deleted_at, Item.status,
               User.display_name.label("creator_name"), User.username.label("creator_username"),
               Order.public_id.label("order_id"), Order.amount_cents, Order.currency)
        .join(Item, Item.id == Entitlement.item_id).join(User, User.id == Item.creator_id)
        .outerjoin(Order, Order.id == Entitlement.order_id)
        .where(Entitlement.user_id == user_id, Entitlement.revoked_at.is_(None))
        .order_by(Entitlement.granted_at.desc(), Entitlement.id.desc()).limit(size + 1)
    )
    if q.strip():
        words = q.strip()[:200]
        query = query.where(or_(Item.search_vector.op("@@")(func.websearch_to_tsquery("english", words)),
                                Item.title.ilike("%" + words.replace("\\", "\\\\").replace("%", "\\%")
                                                 .replace("_", "\\_") + "%")))
    if after is not None:
        query = query.where(tuple_(Entitlement.granted_at, Entitlement.id) < tuple_(*after))
    rows = list(await db.execute(query))
    more = len(rows) > size
    rows = rows[:size]
    entries = [Owned(entitlement_id=r.id, granted_at=r.granted_at, item=r,
                     order=r if r.order_id else None) for r in rows]
    await _attach_versions(db, entries, {r.id: r.last_downloaded_at or r.granted_at for r in rows})
    last = rows[-1] if rows else None
    return LibraryPage(entries, pagination.encode((last.granted_at, last.id)) if more and last else None)


async def _attach_versions(db: AsyncSession, entries: list[Owned], seen: dict[int, datetime]) -> None:
    """Every published version of the page's items with its ready files, newest version first."""
    by_item = {entry.item.item_id: entry for entry in entries}
    if not by_item:
        return
    rows = await db.execute(
        select(ItemVersion.item_id, ItemVersion.id, ItemVersion.label, ItemVersion.changelog,
               ItemVersion.published_at, Upload.public_id, Upload.filename, Upload.size_bytes, Upload.mime)
        .outerjoin(Upload, and_(Upload.version_id == ItemVersion.id, Upload.purpose == "file",
                                Upload.state == "ready", Upload.deleted_at.is_(None)))
        .where(ItemVersion.item_id.in_(by_item), ItemVersion.published_at.is_not(None))
        .order_by(ItemVersion.item_id, ItemVersion.published_at.desc(), ItemVersion.id.desc(), Upload.id)
    )
    for row in rows:
        entry = by_item[row.item_id]
        if not entry.versions or entry.versions[-1]["id"] != row.id:
            entry.versions.append({"id": row.id, "label": row.label, "changelog": row.changelog,
                                   "published_at": row.published_at, "files": []})
            # The newest version came out after this person last downloaded (or, never having downloaded,
            # after they got the item).
            if len(entry.versions) == 1 and row.published_at > seen[entry.entitlement_id]:
                entry.new_version = True
        if row.public_id:
            entry.versions[-1]["files"].append({"public_id": row.public_id, "filename": row.filename,
                                                "size_bytes": row.size_bytes, "mime": row.mime})


async def downloadable(db: AsyncSession, item_id: int, file_id: str | None) -> Any:
    """The upload to hand out: the one asked for (of this item, ready, of a published version), or the first
    file of the newest published version."""
    query = (
        select(Upload.id, Upload.public_id, Upload.storage_key, Upload.filename, Upload.size_bytes, Upload.mime)
        .join(ItemVersion, ItemVersion.id == Upload.version_id)
        .where(Upload.item_id == item_id, Upload.purpose == "file", Upload.state == "ready",
               Upload.deleted_at.is_(None), ItemVersion.published_at.is_not(None))
        .order_by(ItemVersion.published_at.desc(), Upload.id).limit(1)
    )
    if file_id:
        query = query.where(Upload.public_id == file_id)
    return (await db.execute(query)).first()


async def note_download(db: AsyncSession, user_id: int, item_id: int) -> None:
    await db.execute(update(Entitlement).where(Entitlement.user_id == user_id, Entitlement.item_id == item_id,
                                               Entitlement.revoked_at.is_(None))
                     .values(last_downloaded_at=func.now()))
