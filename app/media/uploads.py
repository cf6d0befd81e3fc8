"""Uploads: registering a received file (storage counted, job queued, in one transaction) and reading them back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog import creators
from app.catalog.models import Creator, Item, ItemVersion
from app.db.base import new_public_id
from app.media.models import Upload
from app.media.names import safe_filename
from app.settings import Settings
from app.web.errors import Conflict, NotFound
from app.worker.queue import enqueue

FINAL_STATES = ("ready", "rejected", "failed")


async def register(
    db: AsyncSession,
    settings: Settings,
    creator: Creator,
    item: Item | None,
    purpose: str,
    version: ItemVersion | None,
    filename: str,
    size: int,
    temp_path: Path,
) -> Upload:
    """Count the file against the creator's storage (refusing it when over quota), record it, queue its processing."""
    await creators.reserve_storage(db, creator, size, settings)
    upload = Upload(
        public_id=new_public_id(),
        creator_id=creator.user_id,
        item_id=item.id if item else None,
        version_id=version.id if version else None,
        purpose=purpose,
        filename=safe_filename(filename),
        size_bytes=size,
        temp_path=str(temp_path),
        state="received",
    )
    db.add(upload)
    await db.flush()
    await enqueue(db, "media.process_upload", {"upload_id": upload.id}, max_attempts=5)
    return upload


async def owned(db: AsyncSession, creator_id: int, public_id: str) -> Upload:
    upload = await db.scalar(
        select(Upload).where(Upload.public_id == public_id, Upload.creator_id == creator_id,
                             Upload.deleted_at.is_(None))
    )
    if upload is None:
        raise NotFound("There is no such file among yours.")
    return upload


async def for_item_page(sessionmaker: async_sessionmaker[AsyncSession], item_id: int) -> list[Upload]:
    """The files listed on an item's page for its owner (a session of its own: the page reads on a plain
    connection otherwise)."""
    async with sessionmaker() as db:
        return await for_item(db, item_id)


async def for_item(db: AsyncSession, item_id: int) -> list[Upload]:
    return list(await db.scalars(
        select(Upload).where(Upload.item_id == item_id, Upload.deleted_at.is_(None), Upload.purpose == "file")
        .order_by(Upload.id)
    ))


async def removable(db: AsyncSession, upload: Upload) -> bool:
    """Whether the creator may remove this file now (see `remove`)."""
    if upload.purpose != "file" or upload.state not in FINAL_STATES:
        return False
    version = await db.get(ItemVersion, upload.version_id) if upload.version_id else None
    return version is None or version.published_at is None


async def remove(db: AsyncSession, upload: Upload) -> None:
    """Remove a file from a version that is not published yet; published files stay for their buyers."""
    if upload.purpose != "file":
        raise Conflict("A cover is replaced, not removed: upload a new one.")
    if upload.version_id is not None:
        version = await db.get(ItemVersion, upload.version_id)
        if version is not None and version.published_at is not None:
            raise Conflict("Files of a published version stay available to buyers; start a new version instead.")
    if upload.state not in FINAL_STATES:
        raise Conflict("This file is still being processed; remove it once it is ready.")
    upload.deleted_at = datetime.now(UTC)
    if upload.state == "ready":
        await creators.release_storage(db, upload.creator_id, upload.size_bytes)
    await db.flush()
