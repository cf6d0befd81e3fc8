"""The upload pipeline end to end on local disk: a real file posted through the app, processed by the real
worker (audio, archives, rejected files, repeated and crashed jobs), stored, and served back through signed
URLs with ranges."""

from __future__ import annotations

import asyncio
import hashlib
import html
from pathlib import Path
from typing import Any

import pytest

from app.db.engine import make_engine, make_sessionmaker
from app.media import jobs
from app.worker.queue import ClaimedJob, JobContext, enqueue
from app.worker.runner import WorkerResources
from tests.catalog.conftest import CreatorSetup, new_item, run_jobs
from tests.catalog.pipeline_helpers import fragment, in_session, keys_under, polls, stored_bytes
from tests.catalog.upload_helpers import Conn, row, send, storage_used, temp_files
from tests.media import samples

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
        resources = WorkerResources.build(settings, sessionmaker)
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
