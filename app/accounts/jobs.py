"""Periodic clean-up of expired sessions and stale login throttling buckets."""

from __future__ import annotations

import logging
from datetime import timedelta

from app.accounts import sessions, throttle
from app.worker.queue import JobContext, Periodic

log = logging.getLogger("fairshelf.accounts")


async def purge_expired_sessions(ctx: JobContext) -> None:
    removed = await sessions.purge_expired(ctx.session, ctx.resources.settings)
    removed_buckets = await throttle.purge_stale(ctx.session)
    log.info("removed %d expired sessions and %d stale throttle buckets", removed, removed_buckets)


JOBS = {"accounts.purge_expired_sessions": purge_expired_sessions}
PERIODIC = [Periodic("accounts.purge_expired_sessions", timedelta(hours=1))]
