"""Helpers for the upload and pipeline tests: the upload rows and storage accounting a test arranges and
checks, and multipart bodies written byte by byte."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from litestar.testing import TestClient
from psycopg.rows import dict_row

from app.catalog.tiers import MB
from app.settings import Settings
from tests.catalog.conftest import upload

BOUNDARY = "----fairshelfTestBoundary7MA4YWxkTrZu0gW"

Conn = psycopg.Connection  # the test's own connection, for arranging and asserting


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
