"""The worker end to end: the Worker class in this process for retry rules, and real `python -m app worker`
processes for crashes, concurrency, LISTEN/NOTIFY wake-up, burst mode and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import time

import psycopg

from app.worker.runner import Worker
from tests.worker.helpers import (
    Workers,
    enqueue,
    fast_forward,
    job,
    listening_workers,
    scalar,
    seconds_until_run,
    wait_for,
)
from tests.worker.sample_jobs import JOBS

SAMPLE = ("--jobs", "tests.worker.sample_jobs")


def drain(settings) -> str:
    """Run a Worker in burst mode in this process until nothing is due; returns its id."""

    async def main() -> str:
        worker = Worker(settings, JOBS, [], burst=True)
        await asyncio.wait_for(worker.run(), timeout=20)
        return worker.worker_id

    return asyncio.run(main())


def effects(db: psycopg.Connection) -> list[tuple[int, int, str]]:
    return db.execute("SELECT job_id, attempt, worker FROM job_effects ORDER BY job_id, attempt").fetchall()


def starts(db: psycopg.Connection) -> list[tuple[int, int, str]]:
    return db.execute("SELECT job_id, attempt, worker FROM job_starts ORDER BY job_id, attempt").fetchall()


# --- the Worker class, in this process ------------------------------------------------------------


def test_a_job_runs_once_and_its_writes_commit_with_its_completion(settings, db):
    [job_id] = enqueue(settings, "test.effect")
    worker_id = drain(settings)
    row = job(db, job_id)
    assert (row["state"], row["attempts"], row["last_error"], row["locked_by"]) == ("done", 1, None, None)
    assert row["finished_at"] is not None
    assert effects(db) == [(job_id, 1, worker_id)]


def test_a_failing_job_is_retried_with_back_off_and_its_failed_attempts_leave_no_trace(settings, db):
    [job_id] = enqueue(settings, "test.flaky", {"fail_times": 2})
    for attempt in (1, 2):
        worker_id = drain(settings)  # burst mode stops while the retry is not yet due
        row = job(db, job_id)
        assert (row["state"], row["attempts"]) == ("queued", attempt)
        assert row["last_error"] == f"RuntimeError: planned failure on attempt {attempt}"
        assert 2 ** (attempt - 1) - 0.5 <= seconds_until_run(db, job_id) <= 2**attempt
        assert effects(db) == []  # the attempt wrote its effect, then failed: rolled back
        fast_forward(db, job_id)

    worker_id = drain(settings)
    row = job(db, job_id)
    assert (row["state"], row["attempts"], row["last_error"]) == ("done", 3, None)
    assert effects(db) == [(job_id, 3, worker_id)]
    assert [attempt for _, attempt, _ in starts(db)] == [1, 2, 3]


def test_a_permanent_error_fails_the_job_at_once(settings, db):
    [job_id] = enqueue(settings, "test.permanent", {"reason": "the product was deleted"})
    drain(settings)
    row = job(db, job_id)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "PermanentJobError: the product was deleted"
    assert row["finished_at"] is not None and row["locked_by"] is None
    fast_forward(db, job_id)
    drain(settings)
    assert len(starts(db)) == 1 and effects(db) == []


def test_a_job_that_keeps_failing_stops_after_max_attempts(settings, db):
    [job_id] = enqueue(settings, "test.flaky", {"fail_times": 5}, max_attempts=2)
    drain(settings)
    assert job(db, job_id)["state"] == "queued"
    fast_forward(db, job_id)
    drain(settings)
    row = job(db, job_id)
    assert (row["state"], row["attempts"]) == ("failed", 2)
    assert row["last_error"] == "RuntimeError: planned failure on attempt 2"
    fast_forward(db, job_id)
    drain(settings)
    assert len(starts(db)) == 2 and effects(db) == []


def test_a_run_that_lost_its_lease_is_discarded(settings, db):
    [job_id] = enqueue(settings, "test.effect", {"sleep": 1})

    async def main() -> None:
        worker = Worker(settings, JOBS, [], burst=True)
        run = asyncio.create_task(worker.run())
        async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as conn:
            for _ in range(200):
                if (await (await conn.execute("SELECT count(*) FROM job_starts")).fetchone())[0]:
                    break
                await asyncio.sleep(0.05)
            # While it sleeps, another worker takes the job over (as after a reclaim of a lease that lapsed).
            await conn.execute("UPDATE jobs SET locked_by = 'worker-b', attempts = attempts + 1, "
                               "locked_until = now() + interval '1 minute' WHERE id = %s", (job_id,))
        await asyncio.wait_for(run, timeout=20)

    asyncio.run(main())
    assert len(starts(db)) == 1
    assert effects(db) == []  # its writes were rolled back: worker-b's run is the one that counts
    row = job(db, job_id)
    assert (row["state"], row["locked_by"], row["attempts"]) == ("running", "worker-b", 2)


def test_a_job_of_an_unknown_kind_waits_for_a_worker_that_knows_it(settings, db):
    [job_id] = enqueue(settings, "test.not_registered")
    drain(settings)
    row = job(db, job_id)
    assert (row["state"], row["attempts"]) == ("queued", 0)


# --- real worker processes ------------------------------------------------------------------------


def test_a_worker_killed_mid_job_is_reclaimed_and_the_job_takes_effect_exactly_once(settings, db, workers):
    first = workers.start(*SAMPLE, WORKER_LEASE_SECONDS="1")
    [job_id] = enqueue(settings, "test.effect", {"sleep": 60, "sleep_attempts": 1})
    wait_for(lambda: starts(db), timeout=10, what="the first worker to start the job", alive=[first])
    running = job(db, job_id)
    assert running["state"] == "running" and f":{first.pid}:" in running["locked_by"]
    # Its heartbeat keeps pushing the one-second lease forward while the job sleeps.
    wait_for(lambda: job(db, job_id)["locked_until"] > running["locked_until"], timeout=3,
             what="a lease renewal", alive=[first])

    first.kill()
    assert job(db, job_id)["state"] == "running" and effects(db) == []

    second = workers.start(*SAMPLE, WORKER_LEASE_SECONDS="1")
    wait_for(lambda: job(db, job_id)["state"] == "done", timeout=15, what="the re-run", alive=[second])
    row = job(db, job_id)
    assert row["attempts"] == 2
    [(_, attempt, holder)] = effects(db)
    assert attempt == 2 and f":{second.pid}:" in holder
    assert starts(db) == [(job_id, 1, running["locked_by"]), (job_id, 2, holder)]
    assert "reclaimed 1 job(s)" in second.log()


def test_a_live_worker_keeps_its_lease_on_a_job_longer_than_the_lease(settings, db, workers: Workers):
    pair = [workers.start(*SAMPLE, WORKER_LEASE_SECONDS="1") for _ in range(2)]
    wait_for(lambda: listening_workers(db) == 2, timeout=10, what="both workers to listen", alive=pair)
    [job_id] = enqueue(settings, "test.effect", {"sleep": 2.5})
    wait_for(lambda: job(db, job_id)["state"] == "done", timeout=10, what="the long job", alive=pair)
    assert job(db, job_id)["attempts"] == 1
    assert len(starts(db)) == 1 and len(effects(db)) == 1  # the idle worker never took it over


def test_two_workers_run_many_jobs_each_exactly_once(settings, db, workers: Workers):
    pair = [workers.start(*SAMPLE) for _ in range(2)]
    wait_for(lambda: listening_workers(db) == 2, timeout=10, what="both workers to listen", alive=pair)
    job_ids = enqueue(settings, "test.effect", {"sleep": 0.02}, count=200)

    def all_done() -> bool:
        return scalar(db, "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'done'") == 200

    wait_for(all_done, timeout=40, what="200 jobs to finish", alive=pair, interval=0.2)
    run = starts(db)
    done = effects(db)
    assert sorted(job_id for job_id, _, _ in run) == sorted(job_ids)  # each started once: no double claim
    assert sorted(job_id for job_id, _, _ in done) == sorted(job_ids)  # each took effect once
    assert {attempt for _, attempt, _ in done} == {1}
    holders = {worker for _, _, worker in done}
    assert len(holders) == 2 and all(any(f":{w.pid}:" in h for h in holders) for w in pair), holders


def test_notify_wakes_an_idle_worker_long_before_its_next_poll(settings, db, workers: Workers):
    idle = workers.start(*SAMPLE, WORKER_POLL_SECONDS="30")

    def settled() -> bool:  # listening, and its start-up round (the periodic upkeep jobs) is finished
        upkeep = db.execute("SELECT count(*) FILTER (WHERE state = 'done'), count(*) FROM jobs").fetchone()
        return listening_workers(db) == 1 and upkeep[1] > 0 and upkeep[0] == upkeep[1]

    wait_for(settled, timeout=10, what="the worker to go idle", alive=[idle])
    time.sleep(0.3)
    # A job slipped in without a notification stays put: the worker is asleep for its 30-second poll ...
    silent = db.execute("INSERT INTO jobs (kind) VALUES ('test.effect') RETURNING id").fetchone()[0]
    time.sleep(1)
    assert job(db, silent)["state"] == "queued"
    # ... and enqueue's notification wakes it at once.
    started = time.monotonic()
    [woken] = enqueue(settings, "test.effect")
    wait_for(lambda: job(db, woken)["state"] == "done", timeout=3, what="the notified job", alive=[idle])
    assert time.monotonic() - started < 3
    assert job(db, silent)["state"] == "done"  # picked up in the same wake-up


def test_burst_mode_runs_what_is_due_and_exits(settings, db, workers: Workers):
    job_ids = enqueue(settings, "test.effect", count=5)
    [later] = enqueue(settings, "test.effect", run_at=scalar(db, "SELECT now() + interval '1 hour'"))
    started = time.monotonic()
    workers.burst(*SAMPLE, timeout=20)
    assert time.monotonic() - started < 15
    assert sorted(job_id for job_id, _, _ in effects(db)) == job_ids
    assert job(db, later)["state"] == "queued"
    # It also ran the periodic upkeep it scheduled on the way.
    assert scalar(db, "SELECT count(*) FROM jobs WHERE kind LIKE '%%purge%%' AND state = 'done'") == 2


def test_sigterm_lets_the_running_job_finish_before_the_worker_exits(settings, db, workers: Workers):
    worker = workers.start(*SAMPLE, WORKER_LEASE_SECONDS="5")
    [job_id] = enqueue(settings, "test.effect", {"sleep": 1})
    wait_for(lambda: starts(db), timeout=10, what="the job to start", alive=[worker])
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, worker.log()
    assert job(db, job_id)["state"] == "done"
    assert [(j, attempt) for j, attempt, _ in effects(db)] == [(job_id, 1)]
