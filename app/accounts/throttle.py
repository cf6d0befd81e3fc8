"""Login throttling shared by every web worker: a burst of attempts, then exponential back-off.

Per account, attempts are counted before the password is checked, under a row lock, so a flood of parallel
requests cannot slip past the limit while the slow hash runs; a success forgets them. Per client IP, only
failures count (checked before hashing, recorded after), so many people behind one address who know their
passwords are never held up by each other.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

BURST = 5
BASE_SECONDS = 15
CAP_SECONDS = 15 * 60
FORGET_AFTER = timedelta(hours=1)


async def _lock(session: AsyncSession, keys: list[str]) -> list[Any]:
    keys = sorted(set(keys))  # a fixed lock order, so concurrent attempts cannot deadlock
    await session.execute(
        text("INSERT INTO throttle_buckets (key) SELECT unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING"),
        {"keys": keys},
    )
    result = await session.execute(
        text(
            "SELECT key, failures, last_failure_at, blocked_until, now() AS now FROM throttle_buckets "
            "WHERE key = ANY(:keys) ORDER BY key FOR UPDATE"
        ),
        {"keys": keys},
    )
    return list(result.all())


async def _count(session: AsyncSession, rows: list[Any], keys: set[str]) -> None:
    for r in rows:
        if r.key not in keys:
            continue
        count = 1 if r.now - r.last_failure_at > FORGET_AFTER or r.failures == 0 else r.failures + 1
        blocked = (r.now + timedelta(seconds=min(CAP_SECONDS, BASE_SECONDS * 2 ** (count - BURST)))
                   if count >= BURST else None)
        await session.execute(
            text("UPDATE throttle_buckets SET failures = :n, last_failure_at = :now, blocked_until = :b WHERE key = :k"),
            {"n": count, "now": r.now, "b": blocked, "k": r.key},
        )


async def register_attempt(session: AsyncSession, counted: list[str], checked: list[str]) -> int:
    """Refuse when any key is blocked (returns the seconds to wait); else count an attempt against `counted`."""
    rows = await _lock(session, counted + checked)
    now: datetime = rows[0].now
    waits = [(r.blocked_until - now).total_seconds() for r in rows if r.blocked_until and r.blocked_until > now]
    if not waits:
        await _count(session, rows, set(counted))
    await session.commit()
    return math.ceil(max(waits)) if waits else 0


async def record_failure(session: AsyncSession, keys: list[str]) -> None:
    """Count a failed attempt against `keys` (committed at once: the request itself ends in an error)."""
    await _count(session, await _lock(session, keys), set(keys))
    await session.commit()


async def forgive(session: AsyncSession, keys: list[str]) -> None:
    """After a success: forget the attempts counted against `keys`."""
    await session.execute(text("DELETE FROM throttle_buckets WHERE key = ANY(:keys)"), {"keys": keys})


async def purge_stale(session: AsyncSession) -> int:
    result = await session.execute(
        text("DELETE FROM throttle_buckets WHERE last_failure_at < now() - :age AND "
             "(blocked_until IS NULL OR blocked_until < now())"),
        {"age": FORGET_AFTER},
    )
    return result.rowcount
