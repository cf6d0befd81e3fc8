"""A circuit breaker in front of object storage, for the web process.

Signing a link is local computation, so an outage would otherwise show up only as broken players. Instead the
breaker probes the store in the background (never in a request's path) at most every `probe_every` seconds while
links are being handed out; after a failed probe it is open: players and download buttons say "media temporarily
unavailable", file links answer 503 at once, and /health reports storage degraded. Browsing, search, checkout and
webhooks never touch it. The next successful probe closes it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.media.storage import Storage
from app.web.errors import AppError

log = logging.getLogger("fairshelf.media")


class MediaUnavailable(AppError):
    status_code = 503
    title = "Media temporarily unavailable"

    def __init__(self) -> None:
        super().__init__("Media is temporarily unavailable: our file storage is not answering. Please try again in "
                         "a few minutes; everything you own is safe.", headers={"Retry-After": "30"})


class StorageBreaker:
    def __init__(self, storage: Storage, *, probe_every: float = 15.0, probe_timeout: float = 3.0) -> None:
        self.storage = storage
        self.probe_every = probe_every
        self.probe_timeout = probe_timeout
        self.open = False
        self.last_error = ""
        self._checked_at = float("-inf")
        self._probe: asyncio.Task[Any] | None = None

    @property
    def available(self) -> bool:
        """Whether to hand out links now; starts a background probe when the last one is stale."""
        if time.monotonic() - self._checked_at >= self.probe_every and (self._probe is None or self._probe.done()):
            self._checked_at = time.monotonic()
            self._probe = asyncio.get_running_loop().create_task(self.probe())
        return not self.open

    def require(self) -> None:
        if not self.available:
            raise MediaUnavailable()

    async def probe(self) -> bool:
        """Ask the store once, within the timeout; returns whether it answered."""
        try:
            await asyncio.wait_for(self.storage.check(), self.probe_timeout)
        except Exception as exc:  # any failure to answer is an outage from the reader's point of view
            self.failed(f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__)
            return False
        if self.open:
            log.warning("object storage answers again; media links are back")
        self.open, self.last_error, self._checked_at = False, "", time.monotonic()
        return True

    def failed(self, error: str) -> None:
        if not self.open:
            log.error("object storage is unavailable (%s); media links paused", error)
        self.open, self.last_error, self._checked_at = True, error, time.monotonic()
