"""Receiving uploads over HTTP: the tier's per-file limit (announced or streamed), bodies that are empty, cut
short or not a form, and the storage quota and its accounting under concurrency."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from app.catalog import creators
from app.catalog.models import Creator
from app.catalog.tiers import MB, TIERS
from app.db.engine import make_engine, make_sessionmaker
from tests.catalog.conftest import CreatorSetup, new_item, upload
from tests.catalog.upload_helpers import (
    BOUNDARY,
    Conn,
    count,
    csrf_part,
    error_text,
    file_part,
    multipart,
    nothing_recorded,
    post_raw,
    row,
    send,
    set_storage_used,
    storage_used,
    streamed,
    temp_dir,
    temp_files,
    upload_id,
    user_id,
)
from tests.conftest import csrf_token
from tests.media import samples

BASIC = TIERS["basic"]
LIMIT = BASIC.per_file_bytes  # 10 MB
QUOTA = BASIC.storage_bytes  # 50 GB


def sized_file(folder: Path, size: int, name: str = "big.wav") -> Path:
    path = folder / name
    with path.open("wb") as out:
        out.truncate(size)  # sparse: instant, and reads back as zeros
    return path


# -------------------------------------------------------------------------------- per-file limit


def test_announced_oversize_file_is_refused_before_a_byte_is_read(creator: CreatorSetup, db: Conn,
                                                                  sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    response = upload(client, item, sized_file(sources, LIMIT + MB))
    assert int(response.request.headers["content-length"]) > LIMIT + MB
    assert response.status_code == 413
    assert "larger than the 10 MB your tier allows per file" in error_text(response)
    assert not temp_dir(settings).exists()  # refused on the announced length: not even the folder was made
    nothing_recorded(db, settings)


def test_streamed_oversize_file_is_refused_while_it_arrives(creator: CreatorSetup, db: Conn) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    response = post_raw(client, item, streamed(csrf_token(client), LIMIT + 2 * MB))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert error_text(response) == "This file is larger than the 10 MB your tier allows per file."
    assert temp_dir(settings).is_dir()  # it was being received …
    nothing_recorded(db, settings)  # … and the partial file is gone


def test_one_byte_over_is_refused_even_with_an_honest_content_length(creator: CreatorSetup,
                                                                      db: Conn) -> None:
    """Within the multipart slack the announced length passes; the streaming count still stops the file."""
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    body = multipart(csrf_part(csrf_token(client)), file_part(bytes(LIMIT + 1), "big.wav"))
    response = post_raw(client, item, body)
    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413
    nothing_recorded(db, settings)


def test_a_file_of_exactly_the_limit_is_accepted_when_streamed(creator: CreatorSetup, db: Conn) -> None:
    client = creator.client
    item = new_item(client, "audio")
    public_id = upload_id(post_raw(client, item, streamed(csrf_token(client), LIMIT)))
    received = row(db, public_id)
    assert received["size_bytes"] == LIMIT
    assert Path(received["temp_path"]).stat().st_size == LIMIT
    assert storage_used(db) == LIMIT


def test_empty_or_missing_or_cut_short_files_are_refused(creator: CreatorSetup, db: Conn) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    token = csrf_token(client)

    empty = post_raw(client, item, multipart(csrf_part(token), file_part(b"")))
    assert empty.status_code == 400 and error_text(empty) == "That file is empty."

    missing = post_raw(client, item, multipart(csrf_part(token)))
    assert missing.status_code == 400 and error_text(missing) == "Choose a file to upload."

    cut = post_raw(client, item, multipart(csrf_part(token), file_part(b"\xff\xfb" * 5000), close=False)[:-2])
    assert cut.status_code == 400
    assert "cut short or malformed" in error_text(cut)

    two = post_raw(client, item, multipart(csrf_part(token), file_part(b"one", "a.mp3"),
                                           file_part(b"two", "b.mp3")))
    assert two.status_code == 400 and error_text(two) == "Send one file at a time."

    not_a_form = client.post(f"/creator/items/{item}/uploads", content=b"raw bytes",
                             headers={"Content-Type": "application/octet-stream", "X-CSRF-Token": token})
    assert not_a_form.status_code == 400
    assert "multipart/form-data" in error_text(not_a_form)
    nothing_recorded(db, settings)


def test_uploads_that_the_item_cannot_take_are_refused(creator: CreatorSetup, db: Conn,
                                                       sources: Path) -> None:
    client, settings = creator.client, creator.settings
    text_item = new_item(client, "text", title="Liner notes")
    refused = upload(client, text_item, samples.write_text(sources), htmx=True)
    assert refused.status_code == 400 and "Text items have no files" in error_text(refused)
    audio = new_item(client, "audio", title="Night Songs")
    bogus = client.post(f"/creator/items/{audio}/uploads?purpose=avatar", content=b"x",
                        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert bogus.status_code == 400 and "Unknown kind of upload" in error_text(bogus)
    missing_item = upload(client, "nosuchitem23", samples.write_mp3(sources))
    assert missing_item.status_code == 404
    nothing_recorded(db, settings)


# -------------------------------------------------------------------------------- quota


def test_a_file_that_does_not_fit_the_quota_is_refused_and_nothing_is_kept(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    path = samples.write_mp3(sources)
    used = QUOTA - path.stat().st_size + 1
    set_storage_used(db, used)

    response = upload(client, item, path)
    assert response.status_code == 413
    message = error_text(response)
    assert "This 16.3 KB file does not fit: your Basic tier holds 50 GB and you use 50 GB." in message
    assert "Delete files you no longer need, or move to a bigger tier." in message
    nothing_recorded(db, settings, used)

    hx = upload(client, item, path, htmx=True)
    assert hx.status_code == 413
    assert hx.headers["hx-reswap"] == "none"
    assert "does not fit" in error_text(hx)
    nothing_recorded(db, settings, used)


def test_a_file_that_exactly_fills_the_quota_is_accepted(creator: CreatorSetup, db: Conn,
                                                         sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    path = samples.write_mp3(sources)
    set_storage_used(db, QUOTA - path.stat().st_size)
    send(client, item, path)
    assert storage_used(db) == QUOTA


def test_concurrent_reservations_never_exceed_the_quota(creator: CreatorSetup, db: Conn) -> None:
    """20 reservations of 1 MB when 7 MB are left, all waiting on the row at once: exactly 7 succeed."""
    settings = creator.settings
    size, fits, tries = MB, 7, 20
    start = QUOTA - fits * size - size // 2
    set_storage_used(db, start)
    maker = user_id(db)

    async def main() -> list[bool]:
        engine = make_engine(settings, pool_size=tries + 2, max_overflow=0)
        sessionmaker = make_sessionmaker(engine)
        try:
            async with sessionmaker() as blocker:
                # Hold the creator's row: every reservation reads its snapshot first, then queues on the lock.
                await blocker.get(Creator, maker, with_for_update=True)

                async def reserve() -> bool:
                    async with sessionmaker() as session:
                        creator_row = await session.get(Creator, maker)
                        assert creator_row is not None
                        try:
                            await creators.reserve_storage(session, creator_row, size, settings)
                        except creators.QuotaExceeded:
                            await session.rollback()
                            return False
                        await session.commit()
                        return True

                tasks = [asyncio.create_task(reserve()) for _ in range(tries)]
                for _ in range(200):
                    await asyncio.sleep(0.02)
                    waiting = db.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'UPDATE creators SET storage_used_bytes%%'").fetchone()[0]
                    if waiting == tries:
                        break
                assert waiting == tries, f"only {waiting} reservations reached the lock"
                await blocker.commit()
                return await asyncio.gather(*tasks)
        finally:
            await engine.dispose()

    results = asyncio.run(main())
    assert results.count(True) == fits
    assert storage_used(db) == start + fits * size
    assert storage_used(db) <= QUOTA


def test_concurrent_http_uploads_never_exceed_the_quota(creator: CreatorSetup, db: Conn,
                                                        sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    path = samples.write_zip(sources)
    size = path.stat().st_size
    fits, tries = 3, 10
    start = QUOTA - fits * size - size // 2
    set_storage_used(db, start)
    barrier = threading.Barrier(tries)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(upload(client, item, path, htmx=True).status_code)

    threads = [threading.Thread(target=one) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201] * fits + [413] * (tries - fits)
    assert storage_used(db) == start + fits * size <= QUOTA
    assert count(db, "uploads") == fits
    assert len(temp_files(settings)) == fits  # the refused ones left nothing behind
