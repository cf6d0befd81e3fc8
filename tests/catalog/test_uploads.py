"""Receiving uploads over HTTP: the tier's per-file limit (announced or streamed), the storage quota and its
accounting under concurrency, CSRF, client file names, who may touch which upload, and removing files."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.rows import dict_row

from app.catalog import creators
from app.catalog.models import Creator
from app.catalog.tiers import MB, TIERS
from app.db.engine import make_engine, make_sessionmaker
from app.main import create_app
from app.settings import Settings
from tests.catalog.conftest import CreatorSetup, become_creator, new_item, run_jobs, upload
from tests.conftest import csrf_token, post_form, sign_up
from tests.media import samples

BASIC = TIERS["basic"]
LIMIT = BASIC.per_file_bytes  # 10 MB
QUOTA = BASIC.storage_bytes  # 50 GB
BOUNDARY = "----fairshelfTestBoundary7MA4YWxkTrZu0gW"


Conn = psycopg.Connection  # the test's own connection, for arranging and asserting

# -------------------------------------------------------------------------------- helpers


def upload_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    match = re.search(r'id="upload-([a-z0-9]+)"', response.text)
    assert match, response.text
    return match.group(1)


def send(client: TestClient, item: str, path: Path, purpose: str = "file") -> str:
    return upload_id(upload(client, item, path, purpose=purpose, htmx=True))


def row(db: Conn, public_id: str) -> dict[str, Any]:
    found = db.cursor(row_factory=dict_row).execute("SELECT * FROM uploads WHERE public_id = %s",
                                                    (public_id,)).fetchone()
    assert found is not None, public_id
    return found


def user_id(db: Conn, username: str = "maker") -> int:
    return db.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()[0]


def storage_used(db: Conn, username: str = "maker") -> int:
    return db.execute("SELECT storage_used_bytes FROM creators WHERE user_id = %s",
                      (user_id(db, username),)).fetchone()[0]


def set_storage_used(db: Conn, value: int, username: str = "maker") -> None:
    db.execute("UPDATE creators SET storage_used_bytes = %s WHERE user_id = %s",
               (value, user_id(db, username)))


def count(db: Conn, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - test-chosen table names


def temp_dir(settings: Settings) -> Path:
    return settings.var_dir / "tmp" / "uploads"


def temp_files(settings: Settings) -> list[Path]:
    return sorted(temp_dir(settings).iterdir()) if temp_dir(settings).is_dir() else []


def part(headers: str, data: bytes) -> tuple[bytes, bytes]:
    return headers.encode("utf-8"), data


def csrf_part(token: str) -> tuple[bytes, bytes]:
    return part('Content-Disposition: form-data; name="_csrf_token"', token.encode())


def file_part(data: bytes, filename: bytes | str = b"song.mp3") -> tuple[bytes, bytes]:
    raw = filename if isinstance(filename, bytes) else filename.encode("utf-8")
    return (b'Content-Disposition: form-data; name="file"; filename="' + raw + b'"\r\n'
            b"Content-Type: application/octet-stream", data)


def multipart(*parts: tuple[bytes, bytes], close: bool = True) -> bytes:
    """A multipart/form-data body written byte by byte, so the tests control names, order and framing."""
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
                    for headers, data in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def post_raw(client: TestClient, item: str, content: Any, headers: dict[str, str] | None = None,
             purpose: str = "file") -> httpx.Response:
    return client.post(
        f"/creator/items/{item}/uploads" + ("?purpose=cover" if purpose == "cover" else ""),
        content=content,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "HX-Request": "true",
                 **(headers or {})},
        follow_redirects=False,
    )


def streamed(token: str, size: int, filename: str = "big.wav") -> Iterator[bytes]:
    """A body sent in chunks without Content-Length (Transfer-Encoding: chunked), as proxies may send it."""
    yield multipart(csrf_part(token), close=False)
    yield b"--" + BOUNDARY.encode() + b"\r\n" + file_part(b"", filename)[0] + b"\r\n\r\n"
    chunk = bytes(MB)
    sent = 0
    while sent < size:
        piece = chunk[: min(MB, size - sent)]
        sent += len(piece)
        yield piece
    yield b"\r\n--" + BOUNDARY.encode() + b"--\r\n"


def error_text(response: httpx.Response) -> str:
    """The message a person sees: the toast of an HTMX request, or the error page."""
    if "hx-trigger" in response.headers:
        return json.loads(response.headers["hx-trigger"])["toast"]["message"]
    return html.unescape(response.text)


def nothing_recorded(db: Conn, settings: Settings, used: int = 0) -> None:
    assert count(db, "uploads") == 0
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'media.process_upload'").fetchone()[0] == 0
    assert storage_used(db) == used
    assert temp_files(settings) == []


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    """A second browser (its own cookies) on its own app instance over the same database."""
    with TestClient(create_app(settings), base_url="http://testserver.local") as other:
        yield other


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


# -------------------------------------------------------------------------------- CSRF


def test_upload_without_a_csrf_token_is_refused_and_nothing_is_written(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()

    response = post_raw(client, item, multipart(file_part(data)))
    assert response.status_code == 403
    assert "Your form expired or came from another site" in error_text(response)
    forged = post_raw(client, item, multipart(csrf_part("0" * 64 + "f" * 64), file_part(data)))
    assert forged.status_code == 403
    wrong_header = post_raw(client, item, multipart(file_part(data)), headers={"X-CSRF-Token": "nonsense"})
    assert wrong_header.status_code == 403
    nothing_recorded(db, settings)


def test_csrf_token_must_come_before_the_file(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    response = post_raw(client, item, multipart(file_part(data), csrf_part(csrf_token(client))))
    assert response.status_code == 403
    nothing_recorded(db, settings)


def test_csrf_token_in_the_header_is_accepted(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    public_id = upload_id(post_raw(client, item, multipart(file_part(data)),
                                   headers={"X-CSRF-Token": csrf_token(client)}))
    assert row(db, public_id)["size_bytes"] == len(data)


def test_csrf_token_of_another_browser_is_refused(creator: CreatorSetup, db: Conn, sources: Path,
                                                  browser: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    theirs = csrf_token(browser)
    assert theirs != csrf_token(client)
    response = post_raw(client, item, multipart(csrf_part(theirs), file_part(data)))
    assert response.status_code == 403
    nothing_recorded(db, settings)


# -------------------------------------------------------------------------------- file names


NAMES = {
    "parent-dirs": b"../../etc/passwd",
    "absolute": b"/etc/passwd",
    "windows-path": b"..\\..\\Windows\\System32\\evil.zip",
    "control": b"a\x01b\x1b[31mred\x7f\tend.zip",
    "quotes": b'say \\"hi\\" to \'them\'.zip',
    "html": b"<img src=x onerror=alert(1)>.zip",
    "bidi": "invoice\u202egpj.zip".encode(),
    "non-ascii": "Ünïcödé 音楽 – café.zip".encode(),
    "long-ascii": b"x" * 1000 + b".zip",
    "long-non-ascii": ("é" * 400 + ".zip").encode(),
    "dots": b"...hidden",
    "empty": b"",
    "reserved": b"CON.zip",
}


def assert_clean(name: str) -> None:
    assert name, "an empty display name"
    assert len(name) <= 255 and len(name.encode()) <= 255
    assert "/" not in name and "\\" not in name and '"' not in name
    assert not name.startswith(".") and name == name.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name), repr(name)


@pytest.mark.parametrize("raw", list(NAMES.values()), ids=list(NAMES))
def test_client_file_names_are_cleaned_and_never_used_as_paths(
        creator: CreatorSetup, db: Conn, tmp_path: Path, raw: bytes) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    data = samples.write_zip(tmp_path).read_bytes()
    response = post_raw(client, item, multipart(csrf_part(csrf_token(client)), file_part(data, raw)))
    public_id = upload_id(response)

    received = row(db, public_id)
    name = received["filename"]
    assert_clean(name)
    temp = Path(received["temp_path"])
    assert temp.parent == temp_dir(settings)
    assert re.fullmatch(r"[0-9a-f]{32}\.part", temp.name), temp.name
    assert temp.read_bytes() == data
    if raw == NAMES["non-ascii"]:
        assert name == "Ünïcödé 音楽 – café.zip"
    if raw in (NAMES["long-ascii"], NAMES["long-non-ascii"]):
        assert name.endswith(".zip") and len(name.encode()) <= 200
    if raw == NAMES["empty"]:
        assert name == "download"

    run_jobs(settings)
    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    storage = client.app.state.storage
    stored_path = storage.path_for(ready["storage_key"]).resolve()
    assert stored_path.parent == (storage.root / "uploads" / public_id).resolve()
    assert stored_path.read_bytes() == data
    assert ready["storage_key"] == f"uploads/{public_id}/{name}"
    assert not (settings.var_dir / "etc").exists() and not (tmp_path / "etc").exists()

    # The name is shown escaped on the files page.
    page = client.get(f"/creator/items/{item}/files").text
    assert "<img src=x" not in page
    assert f'<span class="upload-name">{name}</span>' in html.unescape(page)

    url = storage.signed_url(ready["storage_key"], filename=name, content_type=ready["mime"], ttl_seconds=60)
    served = client.get(url)
    assert served.status_code == 200 and served.content == data
    disposition = served.headers["content-disposition"]
    assert not any(ord(ch) < 32 or ord(ch) > 126 for ch in disposition), repr(disposition)
    match = re.fullmatch(r"attachment; filename=\"([^\"\\/]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~\-]*)",
                         disposition)
    assert match, disposition
    assert unquote(match.group(2), errors="strict") == name


# -------------------------------------------------------------------------------- authorisation


@pytest.fixture
def intruder(browser: TestClient) -> TestClient:
    become_creator(browser, "intruder")
    return browser


def test_another_creator_cannot_touch_your_uploads(creator: CreatorSetup, db: Conn, sources: Path,
                                                   intruder: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    run_jobs(settings)
    before = row(db, public_id)
    used = storage_used(db)

    theirs = upload(intruder, item, samples.write_mp3(sources, "mine.mp3"))
    assert theirs.status_code == 404
    assert upload(intruder, item, samples.write_png(sources), purpose="cover").status_code == 404
    assert intruder.get(f"/creator/uploads/{public_id}").status_code == 404
    assert intruder.get(f"/creator/uploads/{public_id}", headers={"HX-Request": "true"}).status_code == 404
    assert post_form(intruder, f"/creator/uploads/{public_id}/remove", {}).status_code == 404
    assert intruder.get(f"/creator/items/{item}/files").status_code == 404

    after = row(db, public_id)
    assert after["deleted_at"] is None and after["state"] == before["state"] == "ready"
    assert storage_used(db) == used and storage_used(db, "intruder") == 0
    assert count(db, "uploads") == 1
    assert temp_files(settings) == []

    # Their own item works as usual, and is just as private from the first creator.
    own = new_item(intruder, "audio")
    their_upload = send(intruder, own, samples.write_mp3(sources, "theirs.mp3"))
    assert client.get(f"/creator/uploads/{their_upload}").status_code == 404
    assert upload(client, own, samples.write_mp3(sources)).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(creator: CreatorSetup, db: Conn, sources: Path,
                                               browser: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))

    response = upload(browser, item, samples.write_mp3(sources))
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/creator/items/{item}/uploads"
    hx = upload(browser, item, samples.write_mp3(sources), htmx=True)
    assert hx.headers["hx-redirect"].startswith("/login?next=")
    fragment = browser.get(f"/creator/uploads/{public_id}", follow_redirects=False)
    assert fragment.status_code == 303 and fragment.headers["location"].startswith("/login")
    removal = post_form(browser, f"/creator/uploads/{public_id}/remove", {})
    assert removal.status_code == 303 and removal.headers["location"].startswith("/login")
    assert count(db, "uploads") == 1 and row(db, public_id)["deleted_at"] is None
    assert len(temp_files(settings)) == 1


def test_a_fan_who_does_not_sell_cannot_upload(creator: CreatorSetup, db: Conn, sources: Path,
                                               browser: TestClient) -> None:
    item = new_item(creator.client, "audio")
    sign_up(browser, "just_a_fan")
    response = upload(browser, item, samples.write_mp3(sources))
    assert response.status_code == 403
    assert "Start selling first" in error_text(response)
    assert count(db, "uploads") == 0


# -------------------------------------------------------------------------------- removing


def remove(client: TestClient, public_id: str) -> httpx.Response:
    return post_form(client, f"/creator/uploads/{public_id}/remove", {})


def test_removing_a_file_of_an_unpublished_version_releases_its_storage(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    kept = send(client, item, samples.write_mp3(sources, "kept.mp3"))
    gone = send(client, item, samples.write_wav(sources, "gone.wav"))
    run_jobs(settings)
    assert storage_used(db) == row(db, kept)["size_bytes"] + row(db, gone)["size_bytes"]

    response = remove(client, gone)
    assert response.status_code == 303
    assert response.headers["location"] == f"/creator/items/{item}/files"
    assert row(db, gone)["deleted_at"] is not None
    assert storage_used(db) == row(db, kept)["size_bytes"]
    page = client.get(f"/creator/items/{item}/files").text
    assert f'id="upload-{kept}"' in page and f'id="upload-{gone}"' not in page
    assert client.get(f"/creator/uploads/{gone}").status_code == 404
    assert remove(client, gone).status_code == 404  # removing twice releases nothing twice
    assert storage_used(db) == row(db, kept)["size_bytes"]


def test_removing_a_rejected_file_does_not_release_its_storage_again(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    kept = send(client, item, samples.write_mp3(sources))
    fake = send(client, item, samples.write_exe(sources, "fake.mp3"))
    run_jobs(settings)
    assert row(db, fake)["state"] == "rejected"
    assert storage_used(db) == row(db, kept)["size_bytes"]
    assert remove(client, fake).status_code == 303
    assert storage_used(db) == row(db, kept)["size_bytes"]


def test_a_file_still_being_processed_cannot_be_removed(creator: CreatorSetup, db: Conn,
                                                        sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    response = remove(client, public_id)
    assert response.status_code == 409
    assert "still being processed" in error_text(response)
    assert row(db, public_id)["deleted_at"] is None
    assert storage_used(db) == row(db, public_id)["size_bytes"]


def test_files_of_a_published_version_stay(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    published = send(client, item, samples.write_mp3(sources))
    run_jobs(settings)
    assert post_form(client, f"/creator/items/{item}/publish", {}).status_code == 303
    used = storage_used(db)

    refused = remove(client, published)
    assert refused.status_code == 409
    assert "stay available to buyers" in error_text(refused)
    assert row(db, published)["deleted_at"] is None
    assert storage_used(db) == used

    # Files go into a new version instead, which can be changed until it is published.
    started = post_form(client, f"/creator/items/{item}/versions",
                        {"label": "1.1", "changelog": "Remastered"})
    assert started.status_code == 303, started.text
    draft = send(client, item, samples.write_wav(sources))
    run_jobs(settings)
    assert remove(client, draft).status_code == 303
    assert storage_used(db) == used
    assert remove(client, published).status_code == 409


# -------------------------------------------------------------------------------- found on the way


def test_a_creator_can_start_two_items_before_naming_either(creator: CreatorSetup, db: Conn) -> None:
    client = creator.client
    first = post_form(client, "/creator/items/new", {"type": "audio"})
    assert first.status_code == 303
    second = post_form(client, "/creator/items/new", {"type": "file"})
    assert second.status_code == 303, second.status_code
    assert count(db, "items") == 2
