"""GET/HEAD /media/<key>: serves LocalStorage files behind signed, expiring links, with HTTP Range support.

Only used with the local store (development, tests, a single box without S3); with S3 the links point at the bucket
and the bytes never pass through Python.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import anyio
from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Stream

from app.media.names import InvalidKey, content_disposition
from app.media.storage import CHUNK, LinkExpired, LinkInvalid, LocalStorage

EXPIRED = "This download link has expired. Go back to the page you came from and open the file again."
INVALID = "This download link is not valid. Go back to the page you came from and open the file again."


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The inclusive byte range asked for; None to send everything; False when it cannot be satisfied.

    Malformed or multi-range headers get the whole file (RFC 9110 lets a server ignore Range).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or first == last == "":
        return None
    if first == "":  # suffix: the last n bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else False
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        return False
    return start, end


async def _chunks(file: anyio.AsyncFile[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await file.seek(start)
        while length > 0:
            chunk = await file.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        await file.aclose()


@route("/media/{key:path}", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False)
async def serve_media(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
    storage = getattr(request.app.state, "storage", None)
    if not isinstance(storage, LocalStorage):
        raise NotFoundException()
    key = key.removeprefix("/")
    try:
        grant = storage.verify(key, request.query_params)
        path = storage.path_for(grant.key)
    except LinkExpired:
        raise PermissionDeniedException(detail=EXPIRED) from None
    except (LinkInvalid, InvalidKey):
        raise PermissionDeniedException(detail=INVALID) from None
    try:
        file = await anyio.open_file(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFoundException() from None
    # Size and validators come from the open file: a replacement landing meanwhile (os.replace) does not mix in.
    st = os.fstat(file.wrapped.fileno())
    size = st.st_size
    etag = f'"{st.st_mtime_ns:x}-{size:x}"'
    last_modified = formatdate(st.st_mtime, usegmt=True)
    headers = {
        "content-type": grant.content_type,
        "content-disposition": content_disposition(grant.disposition, grant.filename),
        "accept-ranges": "bytes",
        "etag": etag,
        "last-modified": last_modified,
        # The link is the permission: nobody but this browser may cache it, and not beyond its expiry.
        "cache-control": f"private, max-age={max(0, grant.expires - int(storage.clock()))}",
        # Files are creators' uploads: never sniffed into HTML, never run as a page of our origin.
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
    }
    if_range = request.headers.get("if-range")
    wanted = parse_range(request.headers.get("range"), size) if if_range in (None, etag, last_modified) else None
    if wanted is False:
        await file.aclose()
        return Response(b"", status_code=416, media_type="text/plain",
                        headers={"content-range": f"bytes */{size}", "accept-ranges": "bytes"})
    status, start, length = 200, 0, size
    if isinstance(wanted, tuple):
        start, end = wanted
        status, length = 206, end - start + 1
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(length)
    if request.method == HttpMethod.HEAD:
        await file.aclose()
        return Response(b"", status_code=status, headers=headers)
    return Stream(_chunks(file, start, length), status_code=status, headers=headers)


MEDIA_ROUTES = [serve_media]
