"""Enqueueing jobs inside the caller's transaction, and the state transitions the worker applies to them."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import driver_connection

NOTIFY_CHANNEL = "fairshelf_jobs"


class PermanentJobError(Exception):
    """Raised by a job that must not be retried; the job ends as failed with this message."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job handler receives: the job, a session whose writes commit together with the job's completion,
    the worker's shared resources, and a list of steps to run only once that commit has happened (such as
    deleting a file the committed state no longer needs)."""

    job: ClaimedJob
    session: AsyncSession
    resources: Any
    after_commit: list[Callable[[], None]] = field(default_factory=list)


JobHandler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job the worker enqueues once per `every` (de-duplicated across workers by its time slot)."""

    kind: str
    every: timedelta


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 10,
) -> int | None:
    """Add a job in the caller's transaction; it becomes visible (and workers are woken) when that commits.

    Returns the job id, or None when a job with the same dedupe_key already exists.
    """
    # One round trip: the insert, and the notification that wakes the workers (sent only if a row was added).
    row = await session.execute(
        text(
            """
            WITH added AS (
                INSERT INTO jobs (kind, payload, run_at, dedupe_key, max_attempts)
                VALUES (:kind, CAST(:payload AS jsonb), COALESCE(:run_at, now()), :dedupe_key, :max_attempts)
                ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
                RETURNING id
            )
            SELECT id, pg_notify(:channel, :kind) FROM added
            """
        ),
        {
            "kind": kind,
            "payload": _json(payload or {}),
            "run_at": run_at,
            "dedupe_key": dedupe_key,
            "max_attempts": max_attempts,
            "channel": NOTIFY_CHANNEL,
        },
    )
    return row.scalar_one_or_none()


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


# The two statements every job runs go straight to psycopg on the session's connection (same transaction): they
# are the queue's per-job overhead, and SQLAlchemy's execution costs more than the statement itself.
_CLAIM = """
    UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = %(worker)s,
           locked_until = now() + make_interval(secs => %(lease)s)
    WHERE id = (
        SELECT id FROM jobs
        WHERE state = 'queued' AND run_at <= now() AND kind = ANY(%(kinds)s)
        ORDER BY run_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, kind, payload, attempts, max_attempts
"""
_DONE = ("UPDATE jobs SET state = 'done', finished_at = now(), locked_by = NULL, locked_until = NULL, "
         "last_error = NULL WHERE id = %s AND locked_by = %s AND state = 'running'")


async def claim(session: AsyncSession, worker_id: str, lease_seconds: int, kinds: list[str]) -> ClaimedJob | None:
    """Take the oldest due job no other worker holds, under a lease the worker must keep renewing."""
    connection = await driver_connection(session)
    cursor = await connection.execute(_CLAIM, {"worker": worker_id, "lease": lease_seconds, "kinds": kinds})
    row = await cursor.fetchone()
    await session.commit()
    if row is None:
        return None
    return ClaimedJob(id=row[0], kind=row[1], payload=row[2], attempts=row[3], max_attempts=row[4])


async def renew_lease(session: AsyncSession, job_id: int, worker_id: str, lease_seconds: int) -> bool:
    result = await session.execute(
        text(
            "UPDATE jobs SET locked_until = now() + make_interval(secs => :lease) "
            "WHERE id = :id AND locked_by = :worker AND state = 'running'"
        ),
        {"id": job_id, "worker": worker_id, "lease": lease_seconds},
    )
    await session.commit()
    return result.rowcount == 1


async def mark_done(session: AsyncSession, job_id: int, worker_id: str) -> bool:
    """Finish the job in the handler's own transaction; False when the lease was lost (the caller rolls back)."""
    connection = await driver_connection(session)
    cursor = await connection.execute(_DONE, (job_id, worker_id))
    return cursor.rowcount == 1


def backoff(attempts: int, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds to wait before the next attempt: exponential with full jitter's upper half."""
    delay = min(cap, base * 2 ** (attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


async def mark_failed(
    session: AsyncSession, job: ClaimedJob, worker_id: str, error: str, *, permanent: bool
) -> str:
    """Record a failed attempt: back to queued with back-off, or failed for good. Returns the new state, or
    "lost" when another worker had taken the job over meanwhile."""
    final = permanent or job.attempts >= job.max_attempts
    state = "failed" if final else "queued"
    result = await session.execute(
        text(
            """
            UPDATE jobs SET state = :state, last_error = :error, locked_by = NULL, locked_until = NULL,
                   run_at = CASE WHEN :final THEN run_at ELSE now() + make_interval(secs => :delay) END,
                   finished_at = CASE WHEN :final THEN now() END
            WHERE id = :id AND locked_by = :worker AND state = 'running'
            """
        ),
        {
            "state": state,
            "error": error[:4000],
            "final": final,
            "delay": backoff(job.attempts),
            "id": job.id,
            "worker": worker_id,
        },
    )
    await session.commit()
    return state if result.rowcount == 1 else "lost"


async def reclaim_expired(session: AsyncSession) -> int:
    """Return jobs whose worker stopped renewing its lease (it died) to the queue, or fail them when out of tries."""
    result = await session.execute(
        text(
            """
            UPDATE jobs SET
                state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                last_error = 'worker ' || coalesce(locked_by, '?') || ' stopped before finishing',
                locked_by = NULL, locked_until = NULL, run_at = now()
            WHERE id IN (
                SELECT id FROM jobs WHERE state = 'running' AND locked_until < now() FOR UPDATE SKIP LOCKED
            )
            """
        )
    )
    await session.commit()
    return result.rowcount


async def schedule_periodic(session: AsyncSession, periodic: list[Periodic], now: datetime) -> None:
    """Enqueue each periodic job once for the current time slot; concurrent workers de-duplicate on the key."""
    for p in periodic:
        seconds = int(p.every.total_seconds())
        slot = int(now.timestamp()) // seconds * seconds
        await enqueue(session, p.kind, {}, dedupe_key=f"periodic:{p.kind}:{slot}", max_attempts=3)
    await session.commit()


async def queue_stats(session: AsyncSession) -> list[tuple[str, str, int, float]]:
    """(kind, state, count, age in seconds of the oldest due job) for jobs not yet finished."""
    rows = await session.execute(
        text(
            """
            SELECT kind, state, count(*) AS n,
                   coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0) AS age
            FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind, state
            """
        )
    )
    return [(r.kind, r.state, r.n, float(r.age)) for r in rows]


async def purge_finished(session: AsyncSession, older_than: timedelta) -> int:
    result = await session.execute(
        text("DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < now() - :age"),
        {"age": older_than},
    )
    await session.commit()
    return result.rowcount
