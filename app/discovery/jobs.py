"""Background upkeep of discovery: the suggestion word list and the tag counts."""

from __future__ import annotations

from datetime import timedelta

from app.discovery.pages import refresh_lists
from app.worker.queue import JobContext, Periodic


async def refresh(ctx: JobContext) -> None:
    await refresh_lists(ctx.session)


JOBS = {"discovery.refresh_lists": refresh}
PERIODIC = [Periodic("discovery.refresh_lists", timedelta(minutes=10))]
