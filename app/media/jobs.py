"""Background processing of uploads, and sweeping what was abandoned or is no longer referenced."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
from sqlalchemy import select, text, update

from app.catalog import creators
from app.catalog.models import Creator, Item
from app.media.inspect import Rejected, inspect_file, make_thumbnails
from app.media.models import Upload
from app.worker.queue import JobContext, Periodic

log = logging.getLogger("fairshelf.media")
ABANDONED_AFTER = timedelta(hours=6)


def storage_key(upload: Upload) -> str:
    return f"uploads/{upload.public_id}/{upload.filename}"


async def process_upload(ctx: JobContext) -> None:
    """received -> processing -> ready | rejected | failed. Safe to run again: a final state is left alone."""
    upload_id = ctx.job.payload["upload_id"]
    resources = ctx.resources
    # Show "processing" at once, in its own short transaction (the job's own writes commit only at the end).
    async with resources.sessionmaker() as session:
        marked = await session.execute(
            update(Upload).where(Upload.id == upload_id, Upload.state.in_(("received", "processing")))
            .values(state="processing", attempts=ctx.job.attempts)
        )
        await session.commit()
    if marked.rowcount == 0:
        return
    upload = await ctx.session.get(Upload, upload_id, with_for_update=True)
    assert upload is not None
    item = await ctx.session.get(Item, upload.item_id) if upload.item_id else None
    temp = Path(upload.temp_path or "")
    # The temporary file goes only once the new state is committed: a re-run after a crash still finds it.
    ctx.after_commit.append(lambda: _remove(temp))
    try:
        if not temp.is_file() or temp.stat().st_size != upload.size_bytes:
            raise Rejected("The uploaded file went missing or is incomplete; please upload it again.")
        purpose = "cover" if upload.purpose in ("cover", "avatar") else "file"
        result = await anyio.to_thread.run_sync(inspect_file, temp, item.type if item else "image", purpose)
        key = storage_key(upload)
        thumbnails: list[int] = []
        if purpose == "cover":
            with tempfile.TemporaryDirectory(dir=temp.parent) as out:
                for size, path in await anyio.to_thread.run_sync(make_thumbnails, temp, Path(out)):
                    await resources.storage.put_file(f"uploads/{upload.public_id}/thumb-{size}.webp", path,
                                                     "image/webp")
                    thumbnails.append(size)
        await resources.storage.put_file(key, temp, result.mime)
        upload.state, upload.reason = "ready", None
        upload.storage_key, upload.mime, upload.sha256 = key, result.mime, result.sha256
        upload.meta = {**result.metadata, **({"warnings": result.warnings} if result.warnings else {})}
        upload.thumbnails = thumbnails
        upload.temp_path = None
        if upload.purpose in ("cover", "preview") and item is not None:
            await _replace_on_item(ctx, item.id, upload)
        elif upload.purpose == "avatar":
            await _replace_avatar(ctx, upload)
    except Rejected as exc:
        upload.state, upload.reason = "rejected", str(exc)
        await creators.release_storage(ctx.session, upload.creator_id, upload.size_bytes)
        upload.temp_path = None
    except Exception as exc:
        if ctx.job.attempts < ctx.job.max_attempts:
            ctx.after_commit.clear()  # keep the temporary file for the next attempt
            await _note_failure(ctx, upload_id, exc)
            raise  # retried with back-off
        upload.state = "failed"
        upload.reason = f"We could not process this file ({type(exc).__name__}). Please upload it again."
        await creators.release_storage(ctx.session, upload.creator_id, upload.size_bytes)
        upload.temp_path = None


async def _replace_on_item(ctx: JobContext, item_id: int, upload: Upload) -> None:
    """Make a ready cover or preview clip the item's current one."""
    # Locking the item serialises these jobs for one item, so none of them misses the other's upload.
    item = await ctx.session.get(Item, item_id, with_for_update=True, populate_existing=True)
    assert item is not None
    await _make_current(ctx, item, f"{upload.purpose}_upload_id", upload)


async def _replace_avatar(ctx: JobContext, upload: Upload) -> None:
    creator = await ctx.session.get(Creator, upload.creator_id, with_for_update=True, populate_existing=True)
    assert creator is not None
    await _make_current(ctx, creator, "avatar_upload_id", upload)


async def _make_current(ctx: JobContext, holder: Item | Creator, attribute: str, upload: Upload) -> None:
    """Point `holder.attribute` (a locked row) at `upload` unless a newer upload got there first; whichever
    loses is retired and gives its storage back."""
    current = getattr(holder, attribute)
    if current is not None and current > upload.id:
        superseded: Upload | None = upload
    else:
        setattr(holder, attribute, upload.id)
        superseded = await ctx.session.get(Upload, current) if current and current != upload.id else None
    if superseded is not None and superseded.deleted_at is None:
        superseded.deleted_at = datetime.now(UTC)
        await creators.release_storage(ctx.session, superseded.creator_id, superseded.size_bytes)


async def _note_failure(ctx: JobContext, upload_id: int, exc: Exception) -> None:
    """Show why processing is being retried. The job's transaction holds the upload's row lock, so it is rolled
    back first and the note committed in it (another connection would wait on that lock for ever)."""
    await ctx.session.rollback()
    await ctx.session.execute(update(Upload).where(Upload.id == upload_id)
                              .values(reason=f"Still trying: {type(exc).__name__}: {exc}"[:1000]))
    await ctx.session.commit()


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove temporary file %s", path)


async def sweep(ctx: JobContext) -> None:
    """Fail uploads abandoned mid-way, delete stray temporary files and stored objects nothing refers to."""
    db, settings = ctx.session, ctx.resources.settings
    abandoned = await db.scalars(
        select(Upload).where(
            Upload.state.in_(("received", "processing")),
            Upload.updated_at < text("now() - make_interval(secs => :age)").bindparams(
                age=ABANDONED_AFTER.total_seconds()),
            ~select(text("1")).select_from(text("jobs")).where(
                text("jobs.kind = 'media.process_upload' AND jobs.state IN ('queued', 'running') "
                     "AND (jobs.payload->>'upload_id')::bigint = uploads.id")).exists(),
        ).with_for_update(skip_locked=True)
    )
    for upload in abandoned:
        upload.state, upload.reason = "failed", "The upload was abandoned before it finished processing."
        await creators.release_storage(db, upload.creator_id, upload.size_bytes)
        if upload.temp_path:
            _remove(Path(upload.temp_path))
            upload.temp_path = None
    await db.flush()

    temp_dir = settings.var_dir / "tmp" / "uploads"
    live = set(await db.scalars(select(Upload.temp_path).where(Upload.temp_path.is_not(None))))
    for path in temp_dir.glob("*") if temp_dir.is_dir() else []:
        if str(path) not in live and time.time() - path.stat().st_mtime > ABANDONED_AFTER.total_seconds():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                _remove(path)

    # Stored objects are named uploads/<upload public id>/…: keep those whose upload is alive.
    keep = set(await db.scalars(select(Upload.public_id).where(Upload.deleted_at.is_(None),
                                                               Upload.state.not_in(("rejected", "failed")))))
    removed = 0
    async for key in ctx.resources.storage.iter_keys("uploads/"):
        parts = key.split("/")
        if len(parts) >= 3 and parts[1] not in keep:
            # An upload's row is committed before any of its objects is written, so no row means nothing refers
            # to the object any more.
            await ctx.resources.storage.delete(key)
            removed += 1
    if removed:
        log.info("swept %d unreferenced stored objects", removed)


JOBS = {"media.process_upload": process_upload, "media.sweep": sweep}
PERIODIC = [Periodic("media.sweep", timedelta(hours=1))]
