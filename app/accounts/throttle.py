"""Login throttling shared by every web worker: a burst of attempts, then exponential back-off.

Attempts are counted before the password is checked, under a row lock, so a flood of parallel requests cannot
slip past the limit while the slow hash runs.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

BURST = 5
BASE_SECONDS = 15
CAP_SECONDS = 15 * 60
FORGET_AFTER = timedelta(hours=1)


async def register_attempt(session: AsyncSession, keys: list[str]) -> int:
    """Count an attempt against every key; 0 when allowed, else the seconds to wait (nothing is counted)."""
    keys = sorted(set(keys))  # a fixed lock order, so concurrent attempts cannot deadlock
    await session.execute(
        text("INSERT INTO throttle_buckets (key) SELECT unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING"),
        {"keys": keys},
    )
    rows = (
        await session.execute(
            text(
                "SELECT key, failures, last_failure_at, blocked_until, now() AS now FROM throttle_buckets "
                "WHERE key = ANY(:keys) ORDER BY key FOR UPDATE"
            ),
            {"keys": keys},
        )
    ).all()
    now: datetime = rows[0].now
    waits = [(r.blocked_until - now).total_seconds() for r in rows if r.blocked_until and r.blocked_until > now]
    if waits:
        await session.commit()
        return math.ceil(max(waits))
    for r in rows:
        count = 1 if now - r.last_failure_at > FORGET_AFTER or r.failures == 0 else r.failures + 1
        blocked = now + timedelta(seconds=min(CAP_SECONDS, BASE_SECONDS * 2 ** (count - BURST))) if count >= BURST else None
        await session.execute(
            text("UPDATE throttle_buckets SET failures = :n, last_failure_at = :now, blocked_until = :b WHERE key = :k"),
            {"n": count, "now": now, "b": blocked, "k": r.key},
        )
    await session.commit()
    return 0


async def forgive(session: AsyncSession, reset_keys: list[str], decrement_keys: list[str]) -> None:
    """After a success: forget `reset_keys` entirely, and take this attempt back from `decrement_keys`."""
    await session.execute(text("DELETE FROM throttle_buckets WHERE key = ANY(:keys)"), {"keys": reset_keys})
    await session.execute(
        text(
            "UPDATE throttle_buckets SET failures = greatest(failures - 1, 0), "
            "blocked_until = CASE WHEN failures - 1 >= :burst THEN blocked_until END WHERE key = ANY(:keys)"
        ),
        {"keys": decrement_keys, "burst": BURST},
    )


async def purge_stale(session: AsyncSession) -> int:
    result = await session.execute(
        text("DELETE FROM throttle_buckets WHERE last_failure_at < now() - :age AND "
             "(blocked_until IS NULL OR blocked_until < now())"),
        {"age": FORGET_AFTER},
    )
    return result.rowcount
