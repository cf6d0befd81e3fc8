"""Item views, plays and downloads, counted without slowing the page that counts them.

Each web process adds to an in-memory tally (a dictionary increment, nothing else on the request's path); a
background task writes the tally every few seconds as one statement that adds to the per-item, per-day rows.
A process that dies loses at most those few seconds of counts, which is the trade these numbers can afford.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger("fairshelf.stats")

KINDS = ("views", "plays", "downloads")

_WRITE = """
    INSERT INTO item_stats_daily (item_id, day, creator_id, views, plays, downloads)
    SELECT i.id, t.day, i.creator_id, t.views, t.plays, t.downloads
    FROM unnest(CAST(:ids AS text[]), CAST(:days AS date[]), CAST(:views AS int[]), CAST(:plays AS int[]),
                CAST(:downloads AS int[])) AS t(public_id, day, views, plays, downloads)
    JOIN items i ON i.public_id = t.public_id
    ON CONFLICT (item_id, day) DO UPDATE SET views = item_stats_daily.views + excluded.views,
        plays = item_stats_daily.plays + excluded.plays, downloads = item_stats_daily.downloads + excluded.downloads
"""


class ItemCounter:
    """The per-process tally: (item public id, day, kind) → count."""

    def __init__(self, flush_seconds: float = 5.0, max_keys: int = 50_000) -> None:
        self.flush_seconds, self.max_keys = flush_seconds, max_keys
        self.pending: Counter[tuple[str, date, str]] = Counter()
        self._task: asyncio.Task[None] | None = None

    def add(self, public_id: str, kind: str) -> None:
        if len(self.pending) < self.max_keys and len(public_id) <= 16:  # a flood of junk ids cannot grow it
            self.pending[(public_id, datetime.now(UTC).date(), kind)] += 1

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Write what was counted; ids that name no item are dropped. Returns the number of rows written."""
        taken, self.pending = self.pending, Counter()
        if not taken:
            return 0
        rows: dict[tuple[str, date], dict[str, int]] = {}
        for (public_id, day, kind), n in taken.items():
            rows.setdefault((public_id, day), dict.fromkeys(KINDS, 0))[kind] += n
        keys = list(rows)
        params = {"ids": [k[0] for k in keys], "days": [k[1] for k in keys],
                  **{kind: [rows[k][kind] for k in keys] for kind in KINDS}}
        try:
            async with sessionmaker() as db:
                written = (await db.execute(text(_WRITE), params)).rowcount
                await db.commit()
        except Exception:
            log.exception("writing %d item counters failed; they are kept for the next try", len(keys))
            self.pending.update(taken)
            return 0
        return written

    def start(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.flush_seconds)
                await self.flush(sessionmaker)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush(sessionmaker)


async def daily(db: AsyncSession, creator_id: int, since: date) -> dict[date, dict[str, int]]:
    """Views, plays and downloads of all the creator's items per day since `since`."""
    rows = await db.execute(text(
        "SELECT day, sum(views), sum(plays), sum(downloads) FROM item_stats_daily "
        "WHERE creator_id = :creator AND day >= :since GROUP BY day"), {"creator": creator_id, "since": since})
    return {r[0]: {"views": int(r[1]), "plays": int(r[2]), "downloads": int(r[3])} for r in rows}
