"""The upload pipeline end to end: a real file posted through the app, processed by the real worker, stored in
real storage (local disk, and S3 through a moto server), and served back through signed URLs. Also the
sweeper, which fails abandoned uploads and deletes what nothing refers to any more."""

from __future__ import annotations

import asyncio
import hashlib
import html
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.rows import dict_row

from app.db.engine import make_engine, make_sessionmaker
from app.main import create_app, make_storage_from
from app.media import jobs
from app.settings import Settings
from app.worker.queue import ClaimedJob, JobContext, enqueue
from app.worker.runner import WorkerResources
from tests.catalog.conftest import CreatorSetup, become_creator, new_item, run_jobs, upload
from tests.conftest import csrf_token, make_settings, post_form
from tests.media import samples
from tests.media.conftest import REGION, moto_endpoint, new_bucket  # noqa: F401  (moto_endpoint is a fixture)

THUMBS = (320, 640, 1280)
HOURS = 3600


Conn = psycopg.Connection  # the test's own connection, for arranging and asserting

# -------------------------------------------------------------------------------- helpers


def upload_id(response: httpx.Response) -> str:
    """The public id of the upload an HTMX upload answered with (its fragment)."""
    assert response.status_code == 201, response.text
    match = re.search(r'id="upload-([a-z0-9]+)"', response.text)
    assert match, response.text
    return match.group(1)


def send(client: TestClient, item: str, path: Path, purpose: str = "file", name: str | None = None) -> str:
    return upload_id(upload(client, item, path, purpose=purpose, name=name, htmx=True))


def row(db: Conn, public_id: str) -> dict[str, Any]:
    found = db.cursor(row_factory=dict_row).execute("SELECT * FROM uploads WHERE public_id = %s",
                                                    (public_id,)).fetchone()
    assert found is not None, public_id
    return found


def storage_used(db: Conn) -> int:
    return db.execute("SELECT storage_used_bytes FROM creators WHERE user_id = "
                      "(SELECT id FROM users WHERE username = 'maker')").fetchone()[0]


def temp_files(settings: Settings) -> list[Path]:
    folder = settings.var_dir / "tmp" / "uploads"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def stored_bytes(settings: Settings, key: str, tmp_path: Path) -> bytes:
    """Read an object back through the storage interface (whichever store the settings name)."""
    target = tmp_path / f"read-{hashlib.sha1(key.encode()).hexdigest()}"
    asyncio.run(make_storage_from(settings).download_to(key, target))
    return target.read_bytes()


def keys_under(settings: Settings, prefix: str) -> set[str]:
    async def collect() -> set[str]:
        return {key async for key in make_storage_from(settings).iter_keys(prefix)}

    return asyncio.run(collect())


def put_object(settings: Settings, key: str, source: Path) -> None:
    asyncio.run(make_storage_from(settings).put_file(key, source, "application/octet-stream"))


def fragment(client: TestClient, public_id: str) -> str:
    response = client.get(f"/creator/uploads/{public_id}", headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    return response.text


def polls(fragment_html: str) -> bool:
    return 'hx-trigger="every 1s"' in fragment_html


def cover_src(page: str) -> str:
    match = re.search(r'<div class="item-cover">\s*<img src="([^"]+)"', page)
    assert match, "the item page shows no cover image"
    return html.unescape(match.group(1))


def publish(client: TestClient, item: str) -> None:
    response = post_form(client, f"/creator/items/{item}/publish", {})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/i/{item}"


def in_session(settings: Settings, fn: Any) -> None:
    """Run `fn(session)` with a session of its own, on a fresh engine and event loop."""

    async def main() -> None:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                await fn(session)
        finally:
            await engine.dispose()

    asyncio.run(main())


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    return folder


@pytest.fixture
def stranger(settings: Settings) -> Iterator[TestClient]:
    """Someone else's browser: a separate app instance and cookie jar on the same database."""
    with TestClient(create_app(settings), base_url="http://testserver.local") as other:
        yield other


# -------------------------------------------------------------------------------- audio


@pytest.mark.parametrize("make", [samples.write_mp3, samples.write_wav], ids=["mp3", "wav"])
def test_audio_becomes_ready_with_metadata_hash_and_identical_stored_bytes(
        creator: CreatorSetup, db: Conn, sources: Path, tmp_path: Path, make: Any) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    path = make(sources)
    data = path.read_bytes()

    public_id = send(client, item, path)
    received = row(db, public_id)
    assert received["state"] == "received"
    assert received["size_bytes"] == len(data)
    assert Path(received["temp_path"]).read_bytes() == data
    assert storage_used(db) == len(data)  # counted from the moment the bytes arrived
    assert polls(fragment(client, public_id))

    run_jobs(settings)

    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    assert ready["reason"] is None
    assert ready["sha256"] == hashlib.sha256(data).hexdigest()
    assert ready["storage_key"] == f"uploads/{public_id}/{path.name}"
    assert ready["mime"] == {"mp3": "audio/mpeg", "wav": "audio/wav"}[path.suffix[1:]]
    meta = ready["meta"]
    if path.suffix == ".mp3":
        assert meta["duration_seconds"] == pytest.approx(40 * 1152 / 44100, abs=0.03)
        assert meta["bitrate"] == 128_000
        assert meta["sample_rate"] == 44_100
    else:
        assert meta["duration_seconds"] == pytest.approx(1.0, abs=0.01)
        assert meta["bitrate"] == 22_050 * 16  # mono 16-bit PCM
        assert meta["sample_rate"] == 22_050
    assert stored_bytes(settings, ready["storage_key"], tmp_path) == data
    assert ready["temp_path"] is None
    assert temp_files(settings) == []
    assert storage_used(db) == len(data)

    shown = fragment(client, public_id)
    assert not polls(shown)
    assert "ready" in shown and "0:01" in shown
    files_page = client.get(f"/creator/items/{item}/files").text
    assert f'id="upload-{public_id}"' in files_page


def test_states_are_visible_while_processing(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    first = fragment(client, public_id)
    assert "upload-received" in first and polls(first)
    assert f'hx-get="/creator/uploads/{public_id}"' in first

    # What the worker shows at once when it picks the job up (its own short transaction).
    db.execute("UPDATE uploads SET state = 'processing' WHERE public_id = %s", (public_id,))
    checking = fragment(client, public_id)
    assert "upload-processing" in checking and "checking" in checking and polls(checking)

    run_jobs(creator.settings)
    final = fragment(client, public_id)
    assert "upload-ready" in final and not polls(final)
    # Without HTMX the same URL answers with the same fragment (it is only ever fetched by the page).
    assert client.get(f"/creator/uploads/{public_id}").status_code == 200


# -------------------------------------------------------------------------------- covers


@pytest.mark.parametrize("make", [samples.write_png, samples.write_jpeg], ids=["png", "jpeg"])
def test_cover_gets_webp_thumbnails_and_shows_on_the_public_page(
        creator: CreatorSetup, db: Conn, sources: Path, tmp_path: Path, stranger: TestClient,
        make: Any) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    song = send(client, item, samples.write_mp3(sources))
    cover_path = make(sources)
    cover = send(client, item, cover_path, purpose="cover")
    run_jobs(settings)

    uploaded = row(db, cover)
    assert uploaded["state"] == "ready", uploaded["reason"]
    assert uploaded["thumbnails"] == list(THUMBS)
    assert uploaded["sha256"] == hashlib.sha256(cover_path.read_bytes()).hexdigest()
    assert uploaded["meta"]["width"] == (200 if cover_path.suffix == ".png" else 300)
    item_row = db.cursor(row_factory=dict_row).execute(
        "SELECT id, cover_upload_id FROM items WHERE public_id = %s", (item,)).fetchone()
    assert item_row["cover_upload_id"] == uploaded["id"]
    keys = keys_under(settings, f"uploads/{cover}/")
    assert keys == {uploaded["storage_key"], *(f"uploads/{cover}/thumb-{s}.webp" for s in THUMBS)}
    for size in THUMBS:
        thumb = stored_bytes(settings, f"uploads/{cover}/thumb-{size}.webp", tmp_path)
        assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    assert storage_used(db) == row(db, song)["size_bytes"] + uploaded["size_bytes"]

    publish(client, item)
    page = stranger.get(f"/i/{item}")
    assert page.status_code == 200
    src = cover_src(page.text)
    assert f"uploads/{cover}/thumb-1280.webp" in src
    image = stranger.get(src)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"
    assert image.content == stored_bytes(settings, f"uploads/{cover}/thumb-1280.webp", tmp_path)


def test_a_new_cover_replaces_the_old_one_and_releases_its_storage(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    first = send(client, item, samples.write_png(sources), purpose="cover")
    run_jobs(settings)
    second = send(client, item, samples.write_jpeg(sources), purpose="cover")
    run_jobs(settings)

    assert row(db, second)["state"] == "ready", row(db, second)["reason"]
    assert row(db, first)["deleted_at"] is not None
    assert row(db, second)["deleted_at"] is None
    assert db.execute("SELECT cover_upload_id FROM items").fetchone()[0] == row(db, second)["id"]
    assert storage_used(db) == row(db, second)["size_bytes"]


def test_covers_processed_at_the_same_time_leave_one_cover_counted(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    ids = [send(client, item, samples.write_png(sources, f"cover-{i}.png"), purpose="cover")
           for i in range(4)]
    run_jobs(creator.settings)  # a real worker runs up to 4 jobs at once

    rows = [row(db, public_id) for public_id in ids]
    assert all(r["state"] == "ready" for r in rows)
    current = db.execute("SELECT cover_upload_id FROM items").fetchone()[0]
    live = [r for r in rows if r["deleted_at"] is None]
    assert [r["id"] for r in live] == [current]
    assert storage_used(db) == live[0]["size_bytes"]


def test_corrupt_cover_is_rejected_and_nothing_is_stored(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_truncated_png(sources), purpose="cover")
    run_jobs(settings)

    rejected = row(db, public_id)
    assert rejected["state"] == "rejected"
    assert "damaged or incomplete" in rejected["reason"]
    assert rejected["thumbnails"] == [] and rejected["storage_key"] is None
    assert db.execute("SELECT cover_upload_id FROM items").fetchone()[0] is None
    assert keys_under(settings, "uploads/") == set()
    assert storage_used(db) == 0
    assert temp_files(settings) == []
    shown = fragment(client, public_id)
    assert "rejected" in shown and "damaged or incomplete" in html.unescape(shown) and not polls(shown)


def test_a_program_is_not_a_cover(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "file")
    public_id = send(client, item, samples.write_exe(sources, "cover.png"), purpose="cover")
    run_jobs(creator.settings)
    assert row(db, public_id)["state"] == "rejected"
    assert "Covers must be PNG, JPEG, WebP or GIF" in row(db, public_id)["reason"]


# -------------------------------------------------------------------------------- files


def test_zip_on_a_file_item_is_ready(creator: CreatorSetup, db: Conn, sources: Path,
                                     tmp_path: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    path = samples.write_zip(sources)
    public_id = send(client, item, path)
    run_jobs(settings)
    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    assert ready["mime"] == "application/zip"
    assert ready["meta"]["entries"] == 3
    assert stored_bytes(settings, ready["storage_key"], tmp_path) == path.read_bytes()


def test_renamed_program_is_rejected_with_its_reason_shown_and_everything_released(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    song = send(client, item, samples.write_mp3(sources, "real.mp3"))
    run_jobs(settings)
    before = storage_used(db)

    fake = send(client, item, samples.write_exe(sources, "song.mp3"))
    assert storage_used(db) == before + row(db, fake)["size_bytes"]
    temp = Path(row(db, fake)["temp_path"])
    assert temp.is_file()
    run_jobs(settings)

    rejected = row(db, fake)
    assert rejected["state"] == "rejected"
    assert rejected["reason"] == ("This file is a Windows program (.exe), not an audio file. Audio items "
                                  "accept MP3, WAV, FLAC, Ogg, Opus, M4A or AAC files.")
    assert storage_used(db) == before
    assert not temp.exists() and rejected["temp_path"] is None
    assert rejected["storage_key"] is None and rejected["sha256"] is None
    assert keys_under(settings, f"uploads/{fake}/") == set()
    assert keys_under(settings, "uploads/") == {row(db, song)["storage_key"]}
    assert temp_files(settings) == []

    page = client.get(f"/creator/items/{item}/files")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert rejected["reason"] in text
    assert f'id="upload-{fake}"' in page.text and "upload-rejected" in page.text
    assert not polls(fragment(client, fake))
    # Only ready files count towards publishing.
    assert db.execute("SELECT count(*) FROM uploads WHERE state = 'ready'").fetchone()[0] == 1


@pytest.mark.parametrize(("make", "words"), [
    (samples.write_zip_bomb, "expands to far more than its size"),
    (samples.write_overlapping_zip, "entries overlap"),
    (samples.write_gzip_bomb, "expands to far more than its size"),
], ids=["zip-bomb", "overlapping-zip", "gzip-bomb"])
def test_archive_bombs_are_rejected(creator: CreatorSetup, db: Conn, sources: Path, make: Any,
                                    words: str) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    path = make(sources)
    assert path.stat().st_size < 200_000
    public_id = send(client, item, path)
    run_jobs(settings)
    rejected = row(db, public_id)
    assert rejected["state"] == "rejected"
    assert "bomb" in rejected["reason"] and words in rejected["reason"]
    assert storage_used(db) == 0
    assert keys_under(settings, "uploads/") == set()
    assert temp_files(settings) == []


def test_audio_file_without_sound_is_rejected(creator: CreatorSetup, db: Conn,
                                              sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_fake_mp3(sources))
    run_jobs(creator.settings)
    assert row(db, public_id)["state"] == "rejected"
    assert "could not be read as audio" in row(db, public_id)["reason"]


def test_processing_twice_changes_nothing(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    """A duplicate delivery of the job after it succeeded leaves the upload and the storage count alone."""
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    run_jobs(settings)
    before = row(db, public_id)
    used = storage_used(db)

    async def again(session: Any) -> None:
        await enqueue(session, "media.process_upload", {"upload_id": before["id"]})
        await session.commit()

    in_session(settings, again)
    run_jobs(settings)
    after = row(db, public_id)
    assert (after["state"], after["sha256"], after["storage_key"]) == (before["state"], before["sha256"],
                                                                      before["storage_key"])
    assert storage_used(db) == used


def test_a_rerun_after_a_crash_before_commit_still_makes_the_file_ready(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    job_id, payload, max_attempts = db.execute(
        "SELECT id, payload, max_attempts FROM jobs WHERE kind = 'media.process_upload'").fetchone()
    db.execute("UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'crashed', "
               "locked_until = now() - interval '1 second' WHERE id = %s", (job_id,))

    async def crash() -> None:
        engine = make_engine(settings)
        sessionmaker = make_sessionmaker(engine)
        resources = WorkerResources(settings, sessionmaker, make_storage_from(settings))
        try:
            async with sessionmaker() as session:
                job = ClaimedJob(job_id, "media.process_upload", payload, 1, max_attempts)
                await jobs.process_upload(JobContext(job=job, session=session, resources=resources))
                await session.rollback()  # the process died before the worker could commit
        finally:
            await engine.dispose()

    asyncio.run(crash())
    assert row(db, public_id)["state"] == "processing"
    run_jobs(settings)  # housekeeping reclaims the expired lease and the job runs again

    again = row(db, public_id)
    assert again["state"] == "ready", again["reason"]


# -------------------------------------------------------------------------------- serving


def test_stored_audio_is_served_with_ranges_through_the_local_signed_url(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    path = samples.write_mp3(sources)
    data = path.read_bytes()
    public_id = send(client, item, path)
    run_jobs(creator.settings)
    ready = row(db, public_id)
    url = client.app.state.storage.signed_url(ready["storage_key"], filename=ready["filename"],
                                              content_type=ready["mime"], ttl_seconds=300,
                                              disposition="inline")
    assert url.startswith("/media/uploads/")

    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "audio/mpeg"

    part = client.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert part.headers["content-length"] == "1024"
    assert part.content == data[100:1124]

    tail = client.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    assert tail.content == data[-500:]

    rest = client.get(url, headers={"Range": f"bytes={len(data) - 17}-"})
    assert rest.status_code == 206 and rest.content == data[-17:]

    beyond = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"

    head = client.head(url, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""

    tampered = url.replace(public_id, public_id[::-1])
    assert client.get(tampered).status_code == 403


# -------------------------------------------------------------------------------- the sweeper


def run_sweep(settings: Settings) -> None:
    """Queue the sweep as the scheduler would, and let the real worker run it."""

    async def queue_it(session: Any) -> None:
        await enqueue(session, "media.sweep", {})
        await session.commit()

    in_session(settings, queue_it)
    run_jobs(settings)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        state = conn.execute(
            "SELECT state FROM jobs WHERE kind = 'media.sweep' ORDER BY id DESC LIMIT 1").fetchone()
    assert state == ("done",)


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
        resources = WorkerResources(settings, sessionmaker, make_storage_from(settings))
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


# -------------------------------------------------------------------------------- S3


@pytest.fixture
def s3_settings(database_url: str, tmp_path: Path, moto_endpoint: str) -> Settings:  # noqa: F811
    return make_settings(database_url, var_dir=tmp_path / "var", storage="s3", s3_endpoint_url=moto_endpoint,
                         s3_region=REGION, s3_bucket=new_bucket(moto_endpoint), s3_access_key="testing",
                         s3_secret_key="testing", s3_connect_timeout=2.0, s3_read_timeout=5.0,
                         s3_max_attempts=2)


@pytest.fixture
def s3_creator(s3_settings: Settings) -> Iterator[CreatorSetup]:
    with TestClient(create_app(s3_settings), base_url="http://testserver.local") as client:
        become_creator(client, "maker")
        yield CreatorSetup(client, s3_settings)


def test_s3_audio_is_stored_in_the_bucket_and_served_by_a_presigned_url(
        s3_creator: CreatorSetup, db: Conn, sources: Path, tmp_path: Path,
        moto_endpoint: str) -> None:  # noqa: F811
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio")
    path = samples.write_mp3(sources, "Ünïon Hall.mp3")
    data = path.read_bytes()
    public_id = send(client, item, path)
    run_jobs(settings)

    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    assert ready["sha256"] == hashlib.sha256(data).hexdigest()
    assert ready["meta"]["bitrate"] == 128_000
    assert keys_under(settings, "uploads/") == {ready["storage_key"]}
    assert stored_bytes(settings, ready["storage_key"], tmp_path) == data
    assert temp_files(settings) == []
    assert not (settings.var_dir / "media").exists()  # nothing went to local disk

    url = client.app.state.storage.signed_url(ready["storage_key"], filename=ready["filename"],
                                              content_type=ready["mime"], ttl_seconds=300)
    assert url.startswith(f"{moto_endpoint}/{settings.s3_bucket}/uploads/{public_id}/")
    assert "X-Amz-Signature=" in url
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["content-type"] == "audio/mpeg"
    assert "filename*=UTF-8''%C3%9Cn%C3%AFon%20Hall.mp3" in fetched.headers["content-disposition"]
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    # The app does not serve /media with S3: the bytes never pass through Python.
    assert client.get(f"/media/{ready['storage_key']}").status_code == 404


def test_s3_cover_thumbnails_and_public_page(s3_creator: CreatorSetup, db: Conn, sources: Path,
                                             s3_settings: Settings) -> None:
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    send(client, item, samples.write_mp3(sources))
    cover = send(client, item, samples.write_jpeg(sources), purpose="cover")
    run_jobs(settings)

    uploaded = row(db, cover)
    assert uploaded["state"] == "ready", uploaded["reason"]
    assert keys_under(settings, f"uploads/{cover}/") == {
        uploaded["storage_key"], *(f"uploads/{cover}/thumb-{s}.webp" for s in THUMBS)}
    publish(client, item)
    with TestClient(create_app(s3_settings), base_url="http://testserver.local") as stranger:
        src = cover_src(stranger.get(f"/i/{item}").text)
    assert src.startswith(settings.s3_endpoint_url) and f"uploads/{cover}/thumb-1280.webp" in src
    image = httpx.get(src, timeout=10)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"
    assert image.content[8:12] == b"WEBP"


def test_s3_rejected_program_stores_nothing_and_sweep_cleans_the_bucket(
        s3_creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio")
    song = send(client, item, samples.write_mp3(sources))
    fake = send(client, item, samples.write_exe(sources, "song.mp3"))
    run_jobs(settings)

    assert row(db, fake)["state"] == "rejected"
    assert "Windows program" in row(db, fake)["reason"]
    assert storage_used(db) == row(db, song)["size_bytes"]
    assert keys_under(settings, "uploads/") == {row(db, song)["storage_key"]}
    assert temp_files(settings) == []

    orphan = sources / "orphan.bin"
    orphan.write_bytes(b"nobody's")
    put_object(settings, "uploads/qqqqqqqqqqqq/orphan.bin", orphan)
    run_sweep(settings)
    assert keys_under(settings, "uploads/") == {row(db, song)["storage_key"]}


def test_a_creator_picture_is_checked_thumbnailed_and_replaced(creator: CreatorSetup, db, tmp_path) -> None:
    client = creator.client
    token = csrf_token(client)

    def send(path):  # type: ignore[no-untyped-def]
        with path.open("rb") as handle:
            return client.post("/creator/avatar", data={"_csrf_token": token},
                               files={"file": (path.name, handle, "image/png")}, follow_redirects=False)

    assert send(samples.write_png(tmp_path, "me.png")).status_code == 303
    run_jobs(creator.settings)
    first = db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0]
    assert first is not None
    assert db.execute("SELECT state, thumbnails FROM uploads WHERE id = %s", (first,)).fetchone() == (
        "ready", [320, 640, 1280])
    page = client.get("/creator/profile").text
    assert '<img class="cover-thumb" src="/media/uploads/' in page

    assert send(samples.write_jpeg(tmp_path, "me-again.jpg")).status_code == 303
    run_jobs(creator.settings)
    second = db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0]
    assert second != first
    assert db.execute("SELECT deleted_at IS NOT NULL FROM uploads WHERE id = %s", (first,)).fetchone()[0]
    used = db.execute("SELECT storage_used_bytes FROM creators").fetchone()[0]
    assert used == db.execute("SELECT size_bytes FROM uploads WHERE id = %s", (second,)).fetchone()[0]

    refused = send(samples.write_fake_mp3(tmp_path, "me.png"))
    assert refused.status_code == 303
    run_jobs(creator.settings)
    assert db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0] == second
