"""Handing a file to a browser: a redirect to a short-lived signed URL, so the bytes never pass through Python
(S3 serves them itself; local storage through its own signed, Range-capable route)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect

# A link lives long enough to fetch the file at a slow connection's pace (≈100 kB/s), within bounds: minutes for
# small files, a few hours at most.
LINK_FLOOR, LINK_CEILING, SLOW_BYTES_PER_SECOND = 10 * 60, 4 * 3600, 100_000


def link_ttl(size_bytes: int) -> int:
    return min(LINK_CEILING, max(LINK_FLOOR, size_bytes // SLOW_BYTES_PER_SECOND))


def file_link(request: Request[Any, Any, Any], upload: Any, disposition: str = "inline") -> Redirect:
    request.app.state.storage_breaker.require()  # a 503 at once while the store is down, not a dead link
    url = request.app.state.storage.signed_url(
        upload.storage_key, filename=upload.filename, content_type=upload.mime or "application/octet-stream",
        ttl_seconds=link_ttl(upload.size_bytes), disposition=disposition,  # type: ignore[arg-type]
    )
    return Redirect(url, status_code=302, headers={"Cache-Control": "private, no-store"})
