"""Receiving an upload: the multipart body is streamed to a temporary file, never held in memory, and the
tier's per-file limit is enforced while the bytes arrive."""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.middleware.csrf import generate_csrf_hash
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from app.catalog.tiers import human_size
from app.web.errors import AppError, Forbidden

CSRF_FIELD = "_csrf_token"
FILE_FIELD = "file"
MULTIPART_SLACK = 64 * 1024  # room for the form's other fields and part headers around the file


class ServerFull(AppError):
    status_code = 507
    title = "Out of space"


class TooLarge(AppError):
    status_code = 413
    title = "File too large"


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    path: Path
    filename: str
    size: int
    fields: dict[str, str]


def csrf_matches(secret: str, cookie: str | None, submitted: str | None) -> bool:
    """The double-submit check Litestar's CSRF middleware does, for the one route it cannot parse (uploads)."""

    def decode(token: str | None) -> str | None:
        if not token or len(token) < 65:
            return None
        value, digest = token[:64], token[64:]
        return value if secrets.compare_digest(digest, generate_csrf_hash(token=value, secret=secret)) else None

    a, b = decode(cookie), decode(submitted)
    return a is not None and b is not None and secrets.compare_digest(a, b)


async def receive_file(request: Request[Any, Any, Any], temp_dir: Path, limit: int, secret: str) -> ReceivedFile:
    """Stream the request's `file` part to `temp_dir`, refusing it (413) as soon as it passes `limit` bytes.

    The CSRF token comes in the X-CSRF-Token header (HTMX) or as a form field placed before the file; no byte
    of the file is written before the token checks out.
    """
    too_large = TooLarge(f"This file is larger than the {human_size(limit)} your tier allows per file.")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + MULTIPART_SLACK:
        raise too_large  # refuse before reading a byte when the browser tells us the size up front
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != "multipart/form-data" or "boundary" not in options:
        raise AppError("Send the file as a form upload (multipart/form-data).")
    cookie = request.cookies.get("fairshelf_csrf")
    csrf_ok = csrf_matches(secret, cookie, request.headers.get("x-csrf-token"))

    temp_dir.mkdir(parents=True, exist_ok=True)
    path = temp_dir / f"{secrets.token_hex(16)}.part"
    fields: dict[str, str] = {}
    filename: str | None = None
    size = 0
    fd: int | None = None
    segment: MultipartSegment | None = None
    field_value = bytearray()
    try:
        with PushMultipartParser(options["boundary"], max_header_size=8192, max_header_count=8,
                                 max_segment_count=20, strict=True) as parser:
            async for chunk in request.stream():
                pending: list[bytes] = []
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment, field_value = event, bytearray()
                        if segment.name == FILE_FIELD and segment.filename is not None:
                            if not csrf_ok:
                                raise Forbidden("Your form expired or came from another site. Reload the page "
                                                "and try again.")
                            if filename is not None:
                                raise AppError("Send one file at a time.")
                            filename = segment.filename
                            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    elif event is None:  # end of a part
                        if segment is not None and segment.filename is None:
                            fields[segment.name] = field_value.decode("utf-8", "replace")
                            if segment.name == CSRF_FIELD:
                                csrf_ok = csrf_ok or csrf_matches(secret, cookie, fields[CSRF_FIELD])
                        segment = None
                    elif segment is not None and segment.filename is not None and fd is not None:
                        size += len(event)
                        if size > limit:
                            raise too_large
                        pending.append(event)
                    elif segment is not None:
                        field_value += event
                        if len(field_value) > 4096:
                            raise AppError("A form field is too long.")
                if pending and fd is not None:
                    # Off the event loop: on a small server a big file writes at disk speed, and other requests
                    # on this worker must not wait for it.
                    await anyio.to_thread.run_sync(_write_all, fd, pending)
            for _ in parser.parse(b""):
                pass
    except OSError as exc:
        _discard(path, fd)
        if exc.errno == errno.ENOSPC:
            raise ServerFull("The server is out of space for uploads right now. Please try again later.") from None
        raise
    except MultipartError as exc:
        _discard(path, fd)
        raise AppError(f"The upload was cut short or malformed ({exc}). Please try again.") from None
    except BaseException:
        _discard(path, fd)
        raise
    if fd is not None:
        os.close(fd)
    if filename is None:
        _discard(path, None)
        if not csrf_ok:
            raise Forbidden("Your form expired or came from another site. Reload the page and try again.")
        raise AppError("Choose a file to upload.")
    if size == 0:
        _discard(path, None)
        raise AppError("That file is empty.")
    return ReceivedFile(path=path, filename=filename, size=size, fields=fields)


def _write_all(fd: int, pieces: list[bytes]) -> None:
    for piece in pieces:
        view = memoryview(piece)
        while view:  # os.write may write less than asked (a signal, a nearly full disk)
            view = view[os.write(fd, view):]


def _discard(path: Path, fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
    path.unlink(missing_ok=True)
