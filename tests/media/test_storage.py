"""The storage contract, run against both implementations (LocalStorage on disk, S3Storage against moto over HTTP)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import boto3
import pytest

from app.media.names import InvalidKey, safe_filename, validate_key
from app.media.storage import LocalStorage, ObjectMissing, StorageUnavailable
from tests.conftest import TEST_SECRET
from tests.media.conftest import REGION, Backend, closed_port, make_s3, new_bucket

pytestmark = pytest.mark.anyio


async def keys(storage, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted([key async for key in storage.iter_keys(prefix)])


async def test_put_exists_size_delete(storage, write) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(1000)
    key = "uploads/abc/song.mp3"
    assert not await storage.exists(key)
    assert await storage.size(key) is None

    await storage.put_file(key, write(data), "audio/mpeg")

    assert await storage.exists(key)
    assert await storage.size(key) == 1000
    assert not await storage.exists("uploads/abc/other.mp3")
    assert not await storage.exists("uploads/ab")  # a prefix of a key is not an object
    await storage.delete(key)
    assert not await storage.exists(key)
    assert await storage.size(key) is None
    await storage.delete(key)  # deleting what is gone is fine (sweeps run again after crashes)


async def test_put_replaces_and_leaves_source(storage, write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = "uploads/abc/notes.txt"
    first = write(b"first version")
    await storage.put_file(key, first, "text/plain")
    await storage.put_file(key, write(b"second, longer version"), "text/plain")

    out = tmp_path / "out.txt"
    await storage.download_to(key, out)
    assert out.read_bytes() == b"second, longer version"
    assert first.read_bytes() == b"first version"
    assert await keys(storage, "") == [key]  # no temporary files show up as objects


async def test_empty_file(storage, write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await storage.put_file("uploads/e/empty.bin", write(b""), "application/octet-stream")
    assert await storage.size("uploads/e/empty.bin") == 0
    await storage.download_to("uploads/e/empty.bin", tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes() == b""


async def test_large_file_round_trip_is_byte_identical(backend: Backend, write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(12 * 1024 * 1024 + 12345)  # three 5 MB parts on S3, the last one partial
    key = "uploads/big/take-1.wav"
    await backend.storage.put_file(key, write(data), "audio/wav")

    assert await backend.storage.size(key) == len(data)
    out = tmp_path / "back.wav"
    await backend.storage.download_to(key, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    if backend.kind == "s3":
        # An S3 multipart object's ETag ends in "-<number of parts>": the threshold really applied.
        s3 = boto3.client("s3", endpoint_url=backend.storage._client.meta.endpoint_url, region_name=REGION)
        head = s3.head_object(Bucket=backend.storage.bucket, Key=key)
        assert head["ETag"].strip('"').endswith("-3")
        assert head["ContentType"] == "audio/wav"


async def test_download_missing_raises(storage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ObjectMissing):
        await storage.download_to("uploads/nope/x.bin", tmp_path / "x.bin")


async def test_put_of_missing_source_stores_nothing(storage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        await storage.put_file("uploads/a/b.bin", tmp_path / "does-not-exist", "application/octet-stream")
    assert await keys(storage, "") == []


async def test_iter_keys_by_prefix_across_pages(storage, write) -> None:  # type: ignore[no-untyped-def]
    names = ["uploads/a/1.bin", "uploads/a/2.bin", "uploads/a/deep/3.bin", "uploads/ab/4.bin", "uploads/b/5.bin",
             "thumbs/a/6.webp"]
    for name in names:
        await storage.put_file(name, write(name.encode()), "application/octet-stream")

    assert await keys(storage, "uploads/a/") == ["uploads/a/1.bin", "uploads/a/2.bin", "uploads/a/deep/3.bin"]
    # A plain string prefix, as in S3: "uploads/a" also matches "uploads/ab/…".
    assert await keys(storage, "uploads/a") == ["uploads/a/1.bin", "uploads/a/2.bin", "uploads/a/deep/3.bin",
                                                "uploads/ab/4.bin"]
    assert await keys(storage, "uploads/a/de") == ["uploads/a/deep/3.bin"]
    assert await keys(storage, "") == sorted(names)
    assert await keys(storage, "uploads/zzz/") == []

    for name in names:  # deleting everything while listing is how the sweeper uses it
        await storage.delete(name)
    assert await keys(storage, "") == []


BAD_KEYS = ["../secret.txt", "uploads/../../etc/passwd", "uploads/./x", "/etc/passwd", "uploads\\x.bin",
            "uploads/x\x00.bin", "uploads/x\n.bin", "", "uploads//x", "uploads/x/", ".incoming/x", "uploads/.env",
            " uploads/x"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_refused(storage, write, key: str) -> None:  # type: ignore[no-untyped-def]
    source = write(b"payload")
    with pytest.raises(InvalidKey):
        await storage.put_file(key, source, "text/plain")
    with pytest.raises(InvalidKey):
        await storage.exists(key)
    with pytest.raises(InvalidKey):
        await storage.delete(key)
    with pytest.raises(InvalidKey):
        storage.signed_url(key, filename="x.txt", content_type="text/plain", ttl_seconds=60)
    assert await keys(storage, "") == []


async def test_local_keys_stay_under_root(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "media", TEST_SECRET)
    await storage.put_file("uploads/x/a.bin", write(b"a"), "application/octet-stream")
    assert (tmp_path / "media" / "uploads" / "x" / "a.bin").read_bytes() == b"a"
    await storage.delete("uploads/x/a.bin")
    assert not (tmp_path / "media" / "uploads").exists()  # emptied folders are pruned
    with pytest.raises(InvalidKey):
        await storage.put_file("../outside.bin", write(b"b"), "application/octet-stream")
    assert not (tmp_path / "outside.bin").exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "Ünïcödé 音楽 – mix.flac", "x" * 400 + ".wav", ".hidden",
                                  "a\tb\r\nc.txt", "100% #1? yes*.pdf", "\u202egpj.exe"])
async def test_safe_filenames_are_valid_key_segments(storage, write, name: str) -> None:  # type: ignore[no-untyped-def]
    # The upload pipeline stores files as uploads/<id>/<safe_filename(original name)>.
    key = f"uploads/x/{safe_filename(name)}"
    assert validate_key(key) == key
    await storage.put_file(key, write(b"ok"), "application/octet-stream")
    assert await keys(storage, "uploads/x/") == [key]


async def test_check_passes_when_healthy(storage) -> None:  # type: ignore[no-untyped-def]
    await storage.check()


async def test_local_check_fails_when_root_unusable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the media folder should be")
    with pytest.raises(StorageUnavailable):
        await LocalStorage(tmp_path / "not-a-dir", TEST_SECRET).check()


async def test_s3_check_fails_fast_when_endpoint_refuses() -> None:
    storage = make_s3(f"http://127.0.0.1:{closed_port()}", "any-bucket", connect_timeout=1, read_timeout=1)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await storage.check()
    # An outage must not be mistaken for "no such object" (the sweeper and the app would act on that).
    with pytest.raises(StorageUnavailable):
        await storage.exists("uploads/a/b.bin")
    assert time.monotonic() - started < 5


async def test_s3_check_fails_fast_when_endpoint_hangs(silent_endpoint: str) -> None:
    storage = make_s3(silent_endpoint, "any-bucket", connect_timeout=1, read_timeout=1)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await storage.check()
    assert time.monotonic() - started < 5


async def test_s3_check_fails_for_missing_bucket(moto_endpoint: str) -> None:
    with pytest.raises(Exception) as caught:
        await make_s3(moto_endpoint, "no-such-bucket-here").check()
    assert "404" in str(caught.value) or "NoSuchBucket" in str(caught.value) or "Not Found" in str(caught.value)


async def test_s3_stopped_server_fails_check(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    storage = make_s3(endpoint, new_bucket(endpoint), connect_timeout=1, read_timeout=1)
    await storage.check()
    server.stop()
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await storage.check()
    assert time.monotonic() - started < 5


async def test_local_readers_never_see_a_half_written_file(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "media", TEST_SECRET)
    versions = [write(bytes([65 + i]) * (2 * 1024 * 1024)) for i in range(2)]  # 2 MB of "A", 2 MB of "B"
    key = "uploads/v/file.bin"
    await storage.put_file(key, versions[0], "application/octet-stream")
    seen: list[bytes] = []

    async def writer() -> None:
        for i in range(12):
            await storage.put_file(key, versions[i % 2], "application/octet-stream")

    async def reader() -> None:
        for i in range(12):
            out = tmp_path / f"read-{i}.bin"
            await storage.download_to(key, out)
            data = out.read_bytes()
            seen.append(data[:1] + data[-1:] + str(len(data)).encode())

    import anyio

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(reader)
    assert set(seen) <= {b"AA2097152", b"BB2097152"}


async def test_local_leftovers_of_a_crashed_write_are_not_objects(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "media", TEST_SECRET)
    await storage.put_file("uploads/a/kept.bin", write(b"kept"), "application/octet-stream")
    (storage.root / ".incoming" / "1234abcd.part").write_bytes(b"half a fi")  # as a killed worker leaves it
    assert await keys(storage, "") == ["uploads/a/kept.bin"]


async def test_s3_server_errors_mean_unavailable_not_missing() -> None:
    """A store answering 503 (S3's "SlowDown", a proxy in front of MinIO) is an outage, not an absent object."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Overloaded(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        storage = make_s3(f"http://127.0.0.1:{server.server_address[1]}", "shelf", max_attempts=1)
        with pytest.raises(StorageUnavailable):
            await storage.exists("uploads/a/b.bin")
        with pytest.raises(StorageUnavailable):
            await storage.delete("uploads/a/b.bin")
        with pytest.raises(StorageUnavailable):
            await storage.check()
    finally:
        server.shutdown()
        server.server_close()
