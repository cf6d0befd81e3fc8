"""Job kinds for the worker tests; a worker process loads them with `--jobs tests.worker.sample_jobs`.

Each job leaves two traces in tables the test fixtures create (not a migration):
- `job_starts`: one row per attempt, committed at once on its own connection, so it survives a crash or a
  rolled-back attempt and shows how often a job was *run*;
- `job_effects`: the job's real effect, written through `ctx.session`, so it commits only together with the
  job being marked done and shows how often a job *took effect*.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from app.worker.queue import JobContext, PermanentJobError

TABLES = (
    (
        "CREATE TABLE IF NOT EXISTS job_effects (job_id bigint NOT NULL, attempt int NOT NULL,"
        " worker text NOT NULL)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS job_starts (job_id bigint NOT NULL, attempt int NOT NULL,"
        " worker text NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    ),
)

# Both read the worker holding the job from the jobs row itself, so a test sees which process ran it.
_HOLDER = "SELECT id, :attempt, locked_by FROM jobs WHERE id = :id"
_START = text(f"INSERT INTO job_starts (job_id, attempt, worker) {_HOLDER}")
_EFFECT = text(f"INSERT INTO job_effects (job_id, attempt, worker) {_HOLDER}")


async def _record_start(ctx: JobContext) -> None:
    async with ctx.resources.sessionmaker() as session:
        await session.execute(_START, {"id": ctx.job.id, "attempt": ctx.job.attempts})
        await session.commit()


async def _write_effect(ctx: JobContext) -> None:
    await ctx.session.execute(_EFFECT, {"id": ctx.job.id, "attempt": ctx.job.attempts})


async def record_effect(ctx: JobContext) -> None:
    """Sleep `sleep` seconds (on the first `sleep_attempts` tries only, if given), then write the effect."""
    await _record_start(ctx)
    payload = ctx.job.payload
    if ctx.job.attempts <= payload.get("sleep_attempts", ctx.job.attempts):
        await asyncio.sleep(float(payload.get("sleep", 0)))
    await _write_effect(ctx)


async def flaky(ctx: JobContext) -> None:
    """Write the effect, then fail on the first `fail_times` attempts (whose writes must vanish)."""
    await _record_start(ctx)
    await _write_effect(ctx)
    if ctx.job.attempts <= int(ctx.job.payload.get("fail_times", 0)):
        raise RuntimeError(f"planned failure on attempt {ctx.job.attempts}")


async def permanent(ctx: JobContext) -> None:
    """Write the effect, then refuse for good."""
    await _record_start(ctx)
    await _write_effect(ctx)
    raise PermanentJobError(ctx.job.payload.get("reason", "this job can never succeed"))


JOBS = {"test.effect": record_effect, "test.flaky": flaky, "test.permanent": permanent}
