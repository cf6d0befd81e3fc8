"""What the public pages show: creator profiles, projects, tags, the media a visitor may play, and the sitemap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import BigInteger, String, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Creator, Item, ItemVersion, Project
from app.db.engine import Compiled
from app.discovery.listing import LISTED, tagged_under
from app.media.models import Upload
from app.web.errors import NotFound

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class Profile:
    user: User
    creator: Creator
    avatar: Upload | None
    projects: list[Project]


def username_from_handle(handle: str) -> str:
    """'@nadia' -> 'nadia'; anything that cannot be a creator's address is simply not found."""
    name = handle[1:].lower() if handle.startswith("@") else ""
    if not 3 <= len(name) <= 30 or not set(name) <= USERNAME_CHARS:
        raise NotFound("There is nobody at this address.")
    return name


async def profile(db: AsyncSession, handle: str) -> Profile:
    row = (await db.execute(
        select(User, Creator).join(Creator, Creator.user_id == User.id)
        .where(User.username == username_from_handle(handle))
    )).one_or_none()
    if row is None:
        raise NotFound("There is no creator at this address.")
    user, creator = row
    avatar = await db.get(Upload, creator.avatar_upload_id) if creator.avatar_upload_id else None
    projects = list(await db.scalars(
        select(Project).where(Project.creator_id == user.id,
                              select(Item.id).where(Item.project_id == Project.id, LISTED).exists())
        .order_by(Project.name)
    ))
    return Profile(user, creator, avatar if avatar and avatar.state == "ready" else None, projects)


async def project(db: AsyncSession, handle: str, slug: str) -> tuple[User, Project, Upload | None]:
    row = (await db.execute(
        select(User, Project).join(Project, Project.creator_id == User.id)
        .where(User.username == username_from_handle(handle), Project.slug == slug.lower()[:80])
    )).one_or_none()
    if row is None:
        raise NotFound("There is no project at this address.")
    user, found = row
    cover = await db.get(Upload, found.cover_upload_id) if found.cover_upload_id else None
    return user, found, cover if cover and cover.state == "ready" else None


@dataclass(frozen=True, slots=True)
class Tag:
    path: str
    items: int
    children: list[tuple[str, int]]

    @property
    def ancestors(self) -> list[str]:
        parts = self.path.split(".")
        return [".".join(parts[:n]) for n in range(1, len(parts))]


async def tag(db: AsyncSession, path: str) -> Tag:
    """A tag with the number of listed items under it and its child tags (from tag_counts, refreshed by a job)."""
    count = await db.scalar(text("SELECT items FROM tag_counts WHERE path = CAST(:p AS ltree)"), {"p": path})
    if count is None:
        live = await db.scalar(select(func.count()).select_from(Item).where(LISTED, tagged_under(path)))
        if not live:
            raise NotFound("No published item carries this tag.")
        count = live
    children = (await db.execute(text(
        "SELECT path::text, items FROM tag_counts WHERE path ~ CAST(:q AS lquery) ORDER BY items DESC, path LIMIT 50"
    ), {"q": path + ".*{1}"})).all()
    return Tag(path, int(count), [(p, n) for p, n in children])


async def top_tags(db: AsyncSession, limit: int = 24) -> list[tuple[str, int]]:
    rows = await db.execute(text(
        "SELECT path::text, items FROM tag_counts WHERE nlevel(path) = 1 ORDER BY items DESC, path LIMIT :n"
    ), {"n": limit})
    return [(p, n) for p, n in rows]


async def refresh_lists(db: AsyncSession) -> None:
    """Recompute the word list behind "did you mean", the tag counts (both materialized views), and "popular":
    each sale adds to its item's recent_sales at once; here sales older than the window leave it."""
    await db.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY search_words"))
    await db.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY tag_counts"))
    await db.execute(text(
        "WITH recent AS (SELECT item_id, count(*) AS n FROM orders WHERE state = 'paid' "
        "                AND paid_at > now() - make_interval(days => :days) GROUP BY item_id) "
        "UPDATE items SET recent_sales = coalesce(recent.n, 0) "
        "FROM items i LEFT JOIN recent ON recent.item_id = i.id "
        "WHERE items.id = i.id AND (i.recent_sales > 0 OR recent.n IS NOT NULL) "
        "  AND i.recent_sales <> coalesce(recent.n, 0)"
    ), {"days": RECENT_SALES_DAYS})


RECENT_SALES_DAYS = 7  # the window "popular" ranks by

FILE_COLUMNS = (Upload.id, Upload.public_id, Upload.storage_key, Upload.filename, Upload.mime, Upload.size_bytes)


async def primary_file(db: AsyncSession | psycopg.AsyncConnection[Any], item: Any, *, preview: bool = False) -> Any:
    """The file an inline player plays (a row of FILE_COLUMNS): the preview clip, or the first ready file of the
    newest published version (audio for audio items, video for video items)."""
    if preview:
        if not item.preview_upload_id:
            return None
        return await PREVIEW_FILE.first(db, upload_id=item.preview_upload_id)
    kind = {"audio": "audio/", "video": "video/"}.get(item.type, "")
    return await PRIMARY_FILE.first(db, item_id=item.id, kind=kind)


# Built once (item pages are hot, and building a statement costs more than running one).
PRIMARY_FILE = Compiled(
    select(*FILE_COLUMNS).join(ItemVersion, ItemVersion.id == Upload.version_id)
    .where(Upload.item_id == bindparam("item_id", type_=BigInteger), Upload.purpose == "file",
           Upload.state == "ready", Upload.deleted_at.is_(None), ItemVersion.published_at.is_not(None),
           Upload.mime.startswith(bindparam("kind", type_=String)))
    .order_by(ItemVersion.published_at.desc(), Upload.id).limit(1)
)
PREVIEW_FILE = Compiled(select(*FILE_COLUMNS).where(
    Upload.id == bindparam("upload_id", type_=BigInteger), Upload.state == "ready", Upload.deleted_at.is_(None)))


SITEMAP_BLOCK = 10_000  # item ids per sitemap file (the protocol allows 50,000 URLs and 50 MB)


async def sitemap_blocks(db: AsyncSession) -> list[tuple[int, datetime | None]]:
    rows = await db.execute(
        select(func.div(Item.id, SITEMAP_BLOCK).label("block"), func.max(Item.updated_at))
        .where(LISTED).group_by(text("block")).order_by(text("block"))
    )
    return [(int(block), updated) for block, updated in rows]


async def sitemap_items(db: AsyncSession, block: int) -> list[tuple[str, datetime]]:
    rows = await db.execute(
        select(Item.public_id, Item.updated_at)
        .where(LISTED, Item.id >= block * SITEMAP_BLOCK, Item.id < (block + 1) * SITEMAP_BLOCK).order_by(Item.id)
    )
    return [(p, u) for p, u in rows]


async def sitemap_people(db: AsyncSession) -> list[tuple[str, str | None, datetime]]:
    """Creators with something listed, and their projects with something listed: (username, project slug, when)."""
    rows = await db.execute(text(
        "SELECT u.username, NULL AS slug, max(i.updated_at) FROM items i JOIN users u ON u.id = i.creator_id "
        "WHERE i.status = 'published' AND i.deleted_at IS NULL GROUP BY u.username "
        "UNION ALL "
        "SELECT u.username, p.slug, max(i.updated_at) FROM items i JOIN projects p ON p.id = i.project_id "
        "JOIN users u ON u.id = p.creator_id WHERE i.status = 'published' AND i.deleted_at IS NULL "
        "GROUP BY u.username, p.slug ORDER BY 1, 2 NULLS FIRST"
    ))
    return [(u, s, when) for u, s, when in rows]


async def feed_items(db: AsyncSession, creator_id: int, project_id: int | None = None,
                     limit: int = 50) -> list[Item]:
    where = [LISTED, Item.creator_id == creator_id]
    if project_id is not None:
        where.append(Item.project_id == project_id)
    return list(await db.scalars(
        select(Item).where(*where).order_by(Item.published_at.desc(), Item.id.desc()).limit(limit)
    ))


async def free_audio(db: AsyncSession, items: list[Item]) -> dict[int, Any]:
    """The file a podcast app should download for each free audio item (feed enclosures)."""
    found: dict[int, Any] = {}
    for item in items:
        if item.type == "audio" and item.price_mode == "free":
            upload = await primary_file(db, item)
            if upload is not None:
                found[item.id] = upload
    return found
