"""The queue's state transitions, called directly against the real database: enqueue inside the caller's
transaction, claim with SKIP LOCKED, back-off, leases, periodic de-duplication."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from app.worker import queue
from app.worker.queue import ClaimedJob, Periodic
from tests.worker.helpers import enqueue, fast_forward, job, run_async, scalar, seconds_until_run


def claim(settings, worker: str = "worker-a", lease: int = 30,
          kinds: tuple[str, ...] = ("test.x",)) -> ClaimedJob:
    async def go(sessionmaker):
        async with sessionmaker() as session:
            return await queue.claim(session, worker, lease, list(kinds))

    return run_async(settings, go)


def fail(settings, claimed: ClaimedJob, error: str, *, permanent: bool = False,
         worker: str = "worker-a") -> str:
    async def go(sessionmaker):
        async with sessionmaker() as session:
            return await queue.mark_failed(session, claimed, worker, error, permanent=permanent)

    return run_async(settings, go)


def finish(settings, job_id: int, worker: str = "worker-a") -> bool:
    async def go(sessionmaker):
        async with sessionmaker() as session:
            done = await queue.mark_done(session, job_id, worker)
            await session.commit()
            return done

    return run_async(settings, go)


def listen(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
    return conn


def test_a_rolled_back_enqueue_leaves_no_job_and_wakes_no_worker(settings, db, database_url):
    async def go(sessionmaker):
        async with sessionmaker() as session:
            job_id = await queue.enqueue(session, "test.x", {"n": 1})
            assert job_id is not None
            async with sessionmaker() as other:  # a worker must not see it before the transaction commits
                assert await queue.claim(other, "worker-a", 30, ["test.x"]) is None
            await session.rollback()

    with listen(database_url) as listener:
        run_async(settings, go)
        assert list(listener.notifies(timeout=0.3)) == []
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_a_committed_enqueue_notifies_and_is_claimed_exactly_once(settings, db, database_url):
    with listen(database_url) as listener:
        [job_id] = enqueue(settings, "test.x", {"n": 1})
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert [(n.channel, n.payload) for n in notes] == [(queue.NOTIFY_CHANNEL, "test.x")]

    claimed = claim(settings, "worker-a", lease=30)
    assert claimed == ClaimedJob(id=job_id, kind="test.x", payload={"n": 1}, attempts=1, max_attempts=10)
    row = job(db, job_id)
    assert (row["state"], row["locked_by"], row["attempts"]) == ("running", "worker-a", 1)
    lease_left = db.execute("SELECT extract(epoch FROM locked_until - now()) FROM jobs").fetchone()[0]
    assert 28 <= lease_left <= 30
    assert claim(settings, "worker-b") is None


def test_a_duplicate_dedupe_key_is_not_enqueued_twice(settings, db, database_url):
    with listen(database_url) as listener:
        first = enqueue(settings, "test.x", dedupe_key="once")
        second = enqueue(settings, "test.x", dedupe_key="once")
        notes = list(listener.notifies(timeout=0.5))
    assert first[0] is not None and second == [None]
    assert len(notes) == 1  # the skipped duplicate wakes nobody
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


def test_claim_takes_the_oldest_due_job_of_a_known_kind(settings, db):
    now = datetime.now(UTC)
    [newer] = enqueue(settings, "test.x", {"n": "newer"}, run_at=now - timedelta(seconds=10))
    [older] = enqueue(settings, "test.x", {"n": "older"}, run_at=now - timedelta(seconds=20))
    [future] = enqueue(settings, "test.x", {"n": "future"}, run_at=now + timedelta(hours=1))
    [other] = enqueue(settings, "test.other")

    assert claim(settings).id == older
    assert claim(settings).id == newer
    assert claim(settings) is None  # the future job is not due, the other kind is not ours
    assert claim(settings, kinds=("test.other",)).id == other
    assert job(db, future)["state"] == "queued"


def test_concurrent_claimers_never_get_the_same_job(settings, db):
    job_ids = enqueue(settings, "test.x", count=40)

    async def go(sessionmaker):
        async def claimer(name: str) -> list[int]:
            got = []
            while True:
                async with sessionmaker() as session:
                    claimed = await queue.claim(session, name, 30, ["test.x"])
                if claimed is None:
                    return got
                got.append(claimed.id)

        return await asyncio.gather(*(claimer(f"worker-{i}") for i in range(8)))

    results = run_async(settings.with_(db_pool_size=8), go)
    claimed = [job_id for got in results for job_id in got]
    assert sorted(claimed) == sorted(job_ids)  # every job once, none twice
    assert scalar(db, "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = 1") == 40


def test_a_failed_attempt_is_retried_with_growing_back_off_then_succeeds(settings, db):
    [job_id] = enqueue(settings, "test.x")
    for attempt in (1, 2, 3):
        claimed = claim(settings)
        assert claimed is not None and claimed.attempts == attempt
        assert fail(settings, claimed, f"RuntimeError: boom {attempt}") == "queued"
        row = job(db, job_id)
        assert (row["state"], row["attempts"]) == ("queued", attempt)
        assert row["last_error"] == f"RuntimeError: boom {attempt}"
        assert row["locked_by"] is None and row["locked_until"] is None and row["finished_at"] is None
        # Exponential with jitter: attempt n waits between 2^(n-1) and 2^n seconds.
        delay = seconds_until_run(db, job_id)
        assert 2 ** (attempt - 1) - 0.5 <= delay <= 2**attempt, (attempt, delay)
        assert claim(settings) is None  # not due yet
        fast_forward(db, job_id)

    claimed = claim(settings)
    assert claimed.attempts == 4
    assert finish(settings, job_id) is True
    row = job(db, job_id)
    assert (row["state"], row["attempts"], row["last_error"], row["locked_by"]) == ("done", 4, None, None)
    assert row["finished_at"] is not None


def test_back_off_is_capped_at_an_hour():
    assert all(1 <= queue.backoff(1) <= 2 for _ in range(50))
    assert all(1800 <= queue.backoff(40) <= 3600 for _ in range(50))


def test_a_permanent_failure_ends_failed_without_retry(settings, db):
    [job_id] = enqueue(settings, "test.x")
    before = job(db, job_id)["run_at"]
    assert fail(settings, claim(settings), "PermanentJobError: no such product", permanent=True) == "failed"
    row = job(db, job_id)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "PermanentJobError: no such product"
    assert row["finished_at"] is not None and row["run_at"] == before and row["locked_by"] is None
    assert claim(settings) is None


def test_a_job_out_of_attempts_ends_failed(settings, db):
    [job_id] = enqueue(settings, "test.x", max_attempts=2)
    assert fail(settings, claim(settings), "RuntimeError: one") == "queued"
    fast_forward(db, job_id)
    assert fail(settings, claim(settings), "RuntimeError: two") == "failed"
    row = job(db, job_id)
    assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 2, "RuntimeError: two")
    assert row["finished_at"] is not None
    fast_forward(db, job_id)
    assert claim(settings) is None


def test_an_expired_lease_is_reclaimed_and_the_old_holder_can_no_longer_touch_the_job(settings, db):
    [job_id] = enqueue(settings, "test.x")
    first = claim(settings, "worker-a", lease=30)

    async def reclaim(sessionmaker):
        async with sessionmaker() as session:
            return await queue.reclaim_expired(session)

    def renew(worker):
        async def go(sessionmaker):
            async with sessionmaker() as session:
                return await queue.renew_lease(session, job_id, worker, 30)

        return go

    assert run_async(settings, reclaim) == 0  # a live lease is left alone
    assert run_async(settings, renew("worker-a")) is True
    db.execute("UPDATE jobs SET locked_until = now() - interval '1 second'")  # worker-a stopped renewing
    assert run_async(settings, reclaim) == 1
    row = job(db, job_id)
    assert (row["state"], row["locked_by"], row["attempts"]) == ("queued", None, 1)
    assert row["last_error"] == "worker worker-a stopped before finishing"

    second = claim(settings, "worker-b", lease=30)
    assert second.id == job_id and second.attempts == 2
    assert run_async(settings, renew("worker-a")) is False
    assert finish(settings, job_id, "worker-a") is False
    fail(settings, first, "RuntimeError: late", worker="worker-a")
    row = job(db, job_id)
    assert (row["state"], row["locked_by"], row["attempts"]) == ("running", "worker-b", 2)
    assert run_async(settings, renew("worker-b")) is True
    assert finish(settings, job_id, "worker-b") is True
    assert job(db, job_id)["state"] == "done"


def test_a_reclaimed_job_out_of_attempts_ends_failed(settings, db):
    [job_id] = enqueue(settings, "test.x", max_attempts=1)
    claim(settings, "worker-a")
    db.execute("UPDATE jobs SET locked_until = now() - interval '1 second'")

    async def reclaim(sessionmaker):
        async with sessionmaker() as session:
            return await queue.reclaim_expired(session)

    assert run_async(settings, reclaim) == 1
    row = job(db, job_id)
    assert row["state"] == "failed" and row["finished_at"] is not None
    assert row["last_error"] == "worker worker-a stopped before finishing"


def test_periodic_jobs_are_scheduled_once_per_time_slot(settings, db):
    hourly = [Periodic("test.tick", timedelta(hours=1))]

    def schedule(*moments: datetime) -> None:
        async def go(sessionmaker):
            async def one(now):
                async with sessionmaker() as session:
                    await queue.schedule_periodic(session, hourly, now)

            await asyncio.gather(*(one(now) for now in moments))  # like several workers at once

        run_async(settings, go)

    ten_past = datetime(2030, 5, 1, 10, 10, tzinfo=UTC)
    schedule(ten_past)
    schedule(ten_past, ten_past + timedelta(minutes=5), ten_past + timedelta(minutes=49))
    keys = [r[0] for r in db.execute("SELECT dedupe_key FROM jobs WHERE kind = 'test.tick' ORDER BY id")]
    assert keys == [f"periodic:test.tick:{int(datetime(2030, 5, 1, 10, tzinfo=UTC).timestamp())}"]

    schedule(ten_past + timedelta(minutes=50))  # 11:00, the next slot
    counts = db.execute("SELECT count(*), min(max_attempts), max(max_attempts) FROM jobs").fetchone()
    assert counts == (2, 3, 3)


def test_purge_removes_only_jobs_finished_long_ago(settings, db):
    old_done, recent_done, old_failed, queued = enqueue(settings, "test.x", count=4)
    finish_at = "UPDATE jobs SET state = %s, finished_at = now() - %s::interval WHERE id = %s"
    db.execute(finish_at, ("done", "15 days", old_done))
    db.execute(finish_at, ("done", "1 day", recent_done))
    db.execute(finish_at, ("failed", "20 days", old_failed))

    async def go(sessionmaker):
        async with sessionmaker() as session:
            return await queue.purge_finished(session, timedelta(days=14))

    assert run_async(settings, go) == 2
    assert [r[0] for r in db.execute("SELECT id FROM jobs ORDER BY id")] == [recent_done, queued]


def test_queue_stats_count_unfinished_jobs_by_kind_and_state(settings, db):
    enqueue(settings, "test.x", count=2)
    enqueue(settings, "test.y")
    claim(settings)
    enqueue(settings, "test.x", run_at=datetime.now(UTC) + timedelta(hours=1))
    [finished] = enqueue(settings, "test.y")
    db.execute("UPDATE jobs SET state = 'done', finished_at = now() WHERE id = %s", (finished,))

    async def go(sessionmaker):
        async with sessionmaker() as session:
            return await queue.queue_stats(session)

    stats = {(kind, state): n for kind, state, n, _ in run_async(settings, go)}
    assert stats == {("test.x", "queued"): 2, ("test.x", "running"): 1, ("test.y", "queued"): 1}
