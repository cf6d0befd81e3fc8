"""Signed URLs fetched over HTTP: LocalStorage's through our /media route, S3's from the (moto) S3 server."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
from litestar import Litestar

from app.media.names import MAX_FILENAME_BYTES, content_disposition, safe_filename
from app.media.storage import LocalStorage
from app.media.storage_routes import EXPIRED, INVALID, MEDIA_ROUTES
from tests.conftest import TEST_SECRET
from tests.media.conftest import Backend, closed_port, make_s3, media_app, new_bucket

pytestmark = pytest.mark.anyio
DATA = os.urandom(200_000)  # several of the route's 64 KiB chunks
KEY = "uploads/abc/ünï cöde #1 (live).mp3"


def disposition_params(header: str) -> dict[str, str]:
    """Parameters of a Content-Disposition header, with filename* decoded as RFC 6266 / 8187 say."""
    assert "\r" not in header and "\n" not in header
    params = {"type": header.split(";")[0].strip()}
    if m := re.search(r'(?<![*\w])filename="([^"]*)"', header):
        params["filename"] = m.group(1)
    if m := re.search(r"filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]+)", header):
        params["filename*"] = unquote(m.group(1), encoding="utf-8", errors="strict")
    return params


@pytest.fixture
async def stored(backend: Backend, write) -> Backend:  # type: ignore[no-untyped-def]
    await backend.storage.put_file(KEY, write(DATA), "audio/mpeg")
    return backend


async def test_signed_url_serves_the_exact_bytes(stored: Backend) -> None:
    url = stored.storage.signed_url(KEY, filename="Live at Ünïon Hall.mp3", content_type="audio/mpeg",
                                    ttl_seconds=300)
    response = await stored.fetch(url)
    assert response.status_code == 200, response.text
    assert response.content == DATA
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-disposition"] == content_disposition("attachment", "Live at Ünïon Hall.mp3")
    params = disposition_params(response.headers["content-disposition"])
    assert params["type"] == "attachment"
    assert params["filename*"] == "Live at Ünïon Hall.mp3"
    assert params["filename"] == "Live at Union Hall.mp3"


async def test_inline_disposition(stored: Backend) -> None:
    url = stored.storage.signed_url(KEY, filename="clip.mp3", content_type="audio/mpeg", ttl_seconds=60,
                                    disposition="inline")
    response = await stored.fetch(url)
    assert response.status_code == 200
    assert disposition_params(response.headers["content-disposition"]) == {
        "type": "inline", "filename": "clip.mp3", "filename*": "clip.mp3"}


SIZE = len(DATA)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99),
    ("bytes=5-5", 5, 5),
    ("bytes=100-", 100, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    ("bytes=-999999", 0, SIZE - 1),  # a suffix longer than the file is the whole file
    ("bytes=150000-999999", 150000, SIZE - 1),  # the end is clamped to the last byte
])
async def test_range_requests(stored: Backend, header: str, first: int, last: int) -> None:
    url = stored.storage.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    response = await stored.fetch(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[first:last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
async def test_unsatisfiable_range(stored: Backend, header: str) -> None:
    url = stored.storage.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    response = await stored.fetch(url, headers={"Range": header})
    assert response.status_code == 416
    if stored.kind == "local":
        assert response.headers["content-range"] == f"bytes */{SIZE}"


async def test_multiple_ranges_get_the_whole_file(stored: Backend) -> None:
    url = stored.storage.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    response = await stored.fetch(url, headers={"Range": "bytes=0-1,5-6"})
    assert response.status_code == 200
    assert response.content == DATA


NAMES = [
    ("../../etc/passwd", None),
    ("evil\r\nSet-Cookie: session=x.txt", None),
    ('my "quoted" name.txt', "my quoted name.txt"),
    ("x" * 500 + ".flac", None),
    ("Ünïcödé 音楽 – mix.flac", "Ünïcödé 音楽 – mix.flac"),
    ("\u202egpj.exe", "gpj.exe"),  # a right-to-left override would show it as "exe.jpg"
    ("tab\there\x00nul\x7f.txt", "tab herenul.txt"),
    ("C:\\Users\\me\\report.pdf", "C__Users_me_report.pdf"),
    ("", "download"),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
async def test_filenames_are_sanitised_in_content_disposition(stored: Backend, name: str,
                                                              expected: str | None) -> None:
    url = stored.storage.signed_url(KEY, filename=name, content_type="audio/mpeg", ttl_seconds=60)
    response = await stored.fetch(url)
    assert response.status_code == 200
    header = response.headers["content-disposition"]
    params = disposition_params(header)
    shown, fallback = params["filename*"], params["filename"]
    assert shown == safe_filename(name)
    if expected is not None:
        assert shown == expected
    for bad in ("/", "\\", '"', "\r", "\n", "\x00", "\u202e"):
        assert bad not in shown and bad not in fallback
    assert not shown.startswith(".")
    assert len(shown.encode()) <= MAX_FILENAME_BYTES
    assert fallback.isascii() and fallback.isprintable() and "%" not in fallback
    if name.endswith(".flac"):
        assert shown.endswith(".flac") and fallback.endswith(".flac")  # a cut name keeps its extension


# --- LocalStorage's own route ---------------------------------------------------------------------------------------

@pytest.fixture
async def local(tmp_path: Path, write) -> LocalStorage:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "media", TEST_SECRET)
    await storage.put_file(KEY, write(DATA), "audio/mpeg")
    return storage


async def test_local_head_and_headers(local: LocalStorage) -> None:
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=120)
    head = await backend.fetch(url, method="HEAD")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(SIZE)
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"] == "audio/mpeg"
    max_age = int(re.fullmatch(r"private, max-age=(\d+)", head.headers["cache-control"]).group(1))  # type: ignore[union-attr]
    assert 110 <= max_age <= 120
    assert head.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in head.headers["content-security-policy"]

    partial = await backend.fetch(url, method="HEAD", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert partial.headers["content-length"] == "10"
    assert partial.content == b""


async def test_local_if_range(local: LocalStorage) -> None:
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    etag = (await backend.fetch(url, method="HEAD")).headers["etag"]
    same = await backend.fetch(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (same.status_code, same.content) == (206, DATA[:10])
    changed = await backend.fetch(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
    assert (changed.status_code, changed.content) == (200, DATA)


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-5", "bytes=9-3", "bytes=-", "bytes 0-5"])
async def test_local_malformed_range_is_ignored(local: LocalStorage, header: str) -> None:
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    response = await backend.fetch(url, headers={"Range": header})
    assert (response.status_code, response.content) == (200, DATA)


async def test_local_empty_file(local: LocalStorage, write) -> None:  # type: ignore[no-untyped-def]
    await local.put_file("uploads/e/empty.txt", write(b""), "text/plain")
    backend = Backend("local", local, media_app(local))
    url = local.signed_url("uploads/e/empty.txt", filename="empty.txt", content_type="text/plain", ttl_seconds=60)
    full = await backend.fetch(url)
    assert (full.status_code, full.content, full.headers["content-length"]) == (200, b"", "0")
    assert full.headers["content-type"] == "text/plain"  # exactly what was signed, no charset added
    assert (await backend.fetch(url, headers={"Range": "bytes=0-"})).status_code == 416
    assert (await backend.fetch(url, headers={"Range": "bytes=-5"})).status_code == 416


async def test_local_expired_link_is_refused(local: LocalStorage) -> None:
    backend = Backend("local", local, media_app(local))
    an_hour_ago = LocalStorage(local.root, TEST_SECRET, clock=lambda: time.time() - 3600)
    expired = an_hour_ago.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=600)
    response = await backend.fetch(expired)
    assert response.status_code == 403
    assert EXPIRED in response.text
    assert DATA[:64] not in response.content

    half_a_minute_ago = LocalStorage(local.root, TEST_SECRET, clock=lambda: time.time() - 30)
    still_valid = half_a_minute_ago.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    response = await backend.fetch(still_valid)
    assert response.status_code == 200
    assert int(response.headers["cache-control"].split("=")[1]) <= 30  # never cached beyond the link's life


def _tamper(url: str, param: str, value: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if value is None:
        query.pop(param)
    else:
        query[param] = value
    return parts.path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


@pytest.mark.parametrize(("param", "value"), [
    ("n", "evil.html"),
    ("t", "text/html"),
    ("d", "inline"),
    ("e", str(int(time.time()) + 10 * 365 * 86400)),  # extended expiry
    ("e", "-1"),
    ("s", "A" * 43),
    ("s", ""),
    ("s", None),
    ("e", None),
])
async def test_local_tampered_link_is_refused(local: LocalStorage, param: str, value: str | None) -> None:
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=600)
    assert (await backend.fetch(url)).status_code == 200
    response = await backend.fetch(_tamper(url, param, value))
    assert response.status_code == 403
    assert INVALID in response.text
    assert DATA[:64] not in response.content


async def test_local_link_for_one_key_does_not_open_another(local: LocalStorage, write) -> None:  # type: ignore[no-untyped-def]
    await local.put_file("uploads/other/private.bin", write(b"someone else's file"), "application/octet-stream")
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=600)
    path, query = url.split("?", 1)
    response = await backend.fetch("/media/uploads/other/private.bin?" + query)
    assert response.status_code == 403
    assert b"someone else" not in response.content


async def test_local_link_signed_with_another_secret_is_refused(local: LocalStorage) -> None:
    backend = Backend("local", local, media_app(local))
    forger = LocalStorage(local.root, "another-secret-key-that-is-long-enough-9876543210")
    response = await backend.fetch(forger.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg",
                                                     ttl_seconds=60))
    assert response.status_code == 403


async def test_local_missing_file_is_404(local: LocalStorage) -> None:
    backend = Backend("local", local, media_app(local))
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    await local.delete(KEY)
    assert (await backend.fetch(url)).status_code == 404


@pytest.mark.parametrize("path", ["/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/..%2fsecret.txt",
                                  "/media/uploads/%2e%2e/%2e%2e/secret.txt", "/media//etc/passwd"])
async def test_local_route_never_leaves_the_root(local: LocalStorage, tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    url = local.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    query = url.split("?", 1)[1]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=media_app(local)),
                                 base_url="http://testserver.local") as client:
        response = await client.get(path + "?" + query)
    assert response.status_code in (403, 404)
    assert b"TOP SECRET" not in response.content


async def test_route_is_absent_without_local_storage() -> None:
    app = Litestar(route_handlers=MEDIA_ROUTES)
    backend = Backend("local", LocalStorage(Path("/nonexistent"), TEST_SECRET), app)
    assert (await backend.fetch("/media/uploads/a/b.mp3?e=1&n=a&t=a/b&d=inline&s=x")).status_code == 404


# --- S3 presigning -------------------------------------------------------------------------------------------------

async def test_s3_presigned_url_shape(moto_endpoint: str) -> None:
    storage = make_s3(moto_endpoint, "shelf", public_endpoint_url="https://files.example.com")
    url = storage.signed_url(KEY, filename="Live.mp3", content_type="audio/mpeg", ttl_seconds=600)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "files.example.com")  # the address browsers can reach
    assert unquote(parts.path) == f"/shelf/{KEY}"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "600"
    assert query["response-content-type"] == "audio/mpeg"
    assert query["response-content-disposition"] == content_disposition("attachment", "Live.mp3")


@pytest.mark.parametrize("kwargs", [
    {"content_type": "text/html\r\nX-Evil: 1"},
    {"content_type": "nonsense"},
    {"ttl_seconds": 0},
    {"ttl_seconds": 8 * 86400},
    {"disposition": "form-data"},
])
async def test_bad_link_arguments_are_refused(stored: Backend, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"filename": "a.mp3", "content_type": "audio/mpeg", "ttl_seconds": 60, **kwargs}
    with pytest.raises(ValueError):
        stored.storage.signed_url(KEY, **args)  # type: ignore[arg-type]


async def test_s3_links_from_a_fresh_bucket(moto_endpoint: str, write) -> None:  # type: ignore[no-untyped-def]
    storage = make_s3(moto_endpoint, new_bucket(moto_endpoint))
    await storage.put_file("uploads/t/cover.webp", write(b"RIFF....WEBP"), "image/webp")
    url = storage.signed_url("uploads/t/cover.webp", filename="cover.webp", content_type="image/webp",
                             ttl_seconds=60, disposition="inline")
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF....WEBP"
    assert response.headers["content-type"] == "image/webp"


async def test_s3_presigning_needs_no_network() -> None:
    # Pointed at a closed port: a presigned URL is still made, at once, because presigning is local computation.
    storage = make_s3(f"http://127.0.0.1:{closed_port()}", "shelf", connect_timeout=5, read_timeout=5)
    started = time.monotonic()
    url = storage.signed_url(KEY, filename="a.mp3", content_type="audio/mpeg", ttl_seconds=60)
    assert time.monotonic() - started < 1
    assert "X-Amz-Signature=" in url
