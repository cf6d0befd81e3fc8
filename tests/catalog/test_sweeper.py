"""The sweeper: it fails abandoned uploads and deletes what nothing refers to any more (temporary files,
stored objects), and never what is still in use."""

from __future__ import annotations

import asyncio
import html
import os
import re
import time
from pathlib import Path

from litestar.testing import TestClient

from app.db.engine import make_engine, make_sessionmaker
from app.media import jobs
from app.worker.queue import ClaimedJob, JobContext
from app.worker.runner import WorkerResources
from tests.catalog.conftest import CreatorSetup, new_item, run_jobs
from tests.catalog.pipeline_helpers import fragment, keys_under, polls, publish, put_object, run_sweep
from tests.catalog.upload_helpers import Conn, row, send, storage_used
from tests.conftest import post_form
from tests.media import samples

HOURS = 3600


# -------------------------------------------------------------------------------- the sweeper


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sweeper_fails_abandoned_uploads_and_deletes_what_nothing_refers_to(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    kept = send(client, item, samples.write_zip(sources, "kept.zip"))
    removed = send(client, item, samples.write_zip(sources, "removed.zip"))
    run_jobs(settings)
    response = post_form(client, f"/creator/uploads/{removed}/remove", {})
    assert response.status_code == 303, response.text
    kept_keys = keys_under(settings, f"uploads/{kept}/")
    assert kept_keys == {row(db, kept)["storage_key"]}
    assert keys_under(settings, f"uploads/{removed}/")  # still there until the sweep

    abandoned = send(client, item, samples.write_zip(sources, "abandoned.zip"))
    waiting = send(client, item, samples.write_zip(sources, "waiting.zip"))
    fresh = send(client, item, samples.write_zip(sources, "fresh.zip"))
    # `abandoned` lost its job 7 hours ago; `waiting` is as old but its job is still queued (backing off);
    # `fresh` has no job either but arrived an hour ago.
    db.execute("DELETE FROM jobs WHERE kind = 'media.process_upload' AND (payload->>'upload_id')::bigint = "
               "ANY(%s)", ([row(db, abandoned)["id"], row(db, fresh)["id"]],))
    db.execute("UPDATE jobs SET run_at = now() + interval '1 day' WHERE kind = 'media.process_upload'")
    db.execute("UPDATE uploads SET updated_at = now() - interval '7 hours' WHERE public_id = ANY(%s)",
               ([abandoned, waiting],))
    db.execute("UPDATE uploads SET updated_at = now() - interval '1 hour' WHERE public_id = %s", (fresh,))
    abandoned_temp, waiting_temp, fresh_temp = (Path(row(db, p)["temp_path"])
                                                for p in (abandoned, waiting, fresh))
    age(waiting_temp, 7 * HOURS)  # old, but an upload still refers to it

    temp_dir = settings.var_dir / "tmp" / "uploads"
    stray_old, stray_new = temp_dir / "0123abcd.part", temp_dir / "4567ef01.part"
    stray_old.write_bytes(b"left behind by a crashed request")
    stray_new.write_bytes(b"being received right now")
    age(stray_old, 7 * HOURS)
    stray_dir = temp_dir / "tmpleftover"
    stray_dir.mkdir()
    (stray_dir / "thumb-320.webp").write_bytes(b"x")
    age(stray_dir, 7 * HOURS)
    orphan = sources / "orphan.bin"
    orphan.write_bytes(b"nobody's")
    put_object(settings, "uploads/zzzzzzzzzzzz/orphan.bin", orphan)
    put_object(settings, "uploads/zzzzzzzzzzzz/thumb-320.webp", orphan)
    used_before = storage_used(db)
    sizes = {p: row(db, p)["size_bytes"] for p in (kept, abandoned, waiting, fresh)}
    assert used_before == sum(sizes.values())

    run_sweep(settings)

    gone = row(db, abandoned)
    assert gone["state"] == "failed"
    assert gone["reason"] == "The upload was abandoned before it finished processing."
    assert gone["temp_path"] is None and not abandoned_temp.exists()
    assert storage_used(db) == used_before - sizes[abandoned]
    assert row(db, waiting)["state"] == "received" and waiting_temp.is_file()
    assert row(db, fresh)["state"] == "received" and fresh_temp.is_file()
    assert not stray_old.exists() and not stray_dir.exists()
    assert stray_new.is_file()
    assert keys_under(settings, "uploads/zzzzzzzzzzzz/") == set()
    assert keys_under(settings, f"uploads/{removed}/") == set()
    assert keys_under(settings, f"uploads/{kept}/") == kept_keys
    fragment_html = fragment(client, abandoned)
    assert "upload-failed" in fragment_html and not polls(fragment_html)

    # Running it again changes nothing (and releases nothing twice).
    run_sweep(settings)
    assert storage_used(db) == used_before - sizes[abandoned]
    assert row(db, waiting)["state"] == "received"
    assert keys_under(settings, f"uploads/{kept}/") == kept_keys


def test_sweep_called_directly_with_worker_resources(creator: CreatorSetup, db: Conn,
                                                     sources: Path) -> None:
    """The job function itself, given a JobContext as the worker builds it, keeps live covers' thumbnails."""
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    cover = send(client, item, samples.write_png(sources), purpose="cover")
    run_jobs(settings)
    orphan = sources / "orphan.bin"
    orphan.write_bytes(b"x")
    put_object(settings, "uploads/unknownid234/file.bin", orphan)
    live = keys_under(settings, f"uploads/{cover}/")
    assert len(live) == 4

    async def main() -> None:
        engine = make_engine(settings)
        sessionmaker = make_sessionmaker(engine)
        resources = WorkerResources.build(settings, sessionmaker)
        try:
            async with sessionmaker() as session:
                job = ClaimedJob(0, "media.sweep", {}, 1, 1)
                await jobs.sweep(JobContext(job=job, session=session, resources=resources))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert keys_under(settings, "uploads/") == live


def test_removing_the_current_cover_does_not_leave_a_broken_cover(
        creator: CreatorSetup, db: Conn, sources: Path, stranger: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    send(client, item, samples.write_mp3(sources))
    cover = send(client, item, samples.write_png(sources), purpose="cover")
    run_jobs(settings)
    publish(client, item)

    response = post_form(client, f"/creator/uploads/{cover}/remove", {})
    if response.status_code == 303:  # removal allowed: the cover must then be gone from the item
        run_sweep(settings)
    page = stranger.get(f"/i/{item}").text
    match = re.search(r'<div class="item-cover">\s*<img src="([^"]+)"', page)
    if match:
        linked = stranger.get(html.unescape(match.group(1)))
        assert linked.status_code == 200, "the page links a deleted cover"
