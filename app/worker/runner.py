"""The worker process: claims due jobs with SKIP LOCKED, runs them, retries with back-off, survives crashes.

A job's database writes commit in the same transaction that marks it done, and only while this worker
still holds its lease, so a job's effects land exactly once even if a crashed worker's job is re-run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.gateway import Gateway, make_gateway
from app.db.engine import make_engine, make_sessionmaker
from app.mail.service import Mailer
from app.main import make_storage_from
from app.media.storage import Storage
from app.settings import Settings
from app.web.templating import make_environment
from app.worker import queue
from app.worker.queue import ClaimedJob, JobContext, JobHandler, Periodic, PermanentJobError

log = logging.getLogger("fairshelf.worker")


@dataclass(slots=True)
class WorkerResources:
    """Shared things jobs need: the settings, a way to open more database sessions, the object storage, the
    outbox for email and the payment gateway."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    mailer: Mailer
    gateway: Gateway

    @classmethod
    def build(cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> WorkerResources:
        return cls(settings, sessionmaker, make_storage_from(settings), Mailer(settings, make_environment(settings)),
                   make_gateway(settings))


@dataclass
class Worker:
    settings: Settings
    handlers: dict[str, JobHandler]
    periodic: list[Periodic] = field(default_factory=list)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    # Burst mode: stop once nothing is due and nothing is running (tests, benchmarks, draining by hand).
    burst: bool = False

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        engine = make_engine(self.settings, pool_size=self.settings.worker_concurrency + 2)
        sessionmaker = make_sessionmaker(engine)
        resources = WorkerResources.build(self.settings, sessionmaker)
        listener = asyncio.create_task(self._listen())
        log.info("worker %s started: %d job kinds, concurrency %d", self.worker_id, len(self.handlers),
                 self.settings.worker_concurrency)
        last_housekeeping = float("-inf")
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if loop.time() - last_housekeeping >= self.settings.worker_poll_seconds:
                    last_housekeeping = loop.time()
                    await self._housekeeping(sessionmaker)
                claimed = await self._fill(sessionmaker, resources)
                if self.burst and not claimed and not self._running:
                    break
                await self._sleep()
        finally:
            listener.cancel()
            if self._running:
                log.info("worker %s finishing %d running job(s)", self.worker_id, len(self._running))
                await asyncio.wait(self._running, timeout=self.settings.worker_lease_seconds)
            await engine.dispose()
            log.info("worker %s stopped", self.worker_id)

    async def _housekeeping(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        try:
            async with sessionmaker() as session:
                reclaimed = await queue.reclaim_expired(session)
                if reclaimed:
                    log.warning("reclaimed %d job(s) from workers that stopped", reclaimed)
                await queue.schedule_periodic(session, self.periodic, datetime.now(UTC))
        except Exception:  # the database may be restarting; the next round tries again
            log.exception("worker housekeeping failed")

    async def _fill(self, sessionmaker: async_sessionmaker[AsyncSession], resources: WorkerResources) -> int:
        """Claim due jobs up to the concurrency limit; returns how many were claimed."""
        kinds = list(self.handlers)
        claimed = 0
        while len(self._running) < self.settings.worker_concurrency and not self._stop.is_set():
            try:
                async with sessionmaker() as session:
                    job = await queue.claim(session, self.worker_id, self.settings.worker_lease_seconds, kinds)
            except Exception:
                log.exception("claiming a job failed")
                break
            if job is None:
                break
            claimed += 1
            task = asyncio.create_task(self._execute(job, sessionmaker, resources))
            self._running.add(task)
            task.add_done_callback(self._finished)
        return claimed

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _sleep(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)
        except TimeoutError:
            pass

    async def _listen(self) -> None:
        """Wake the loop on NOTIFY; if the listening connection fails, polling still finds the work."""
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.settings.libpq_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(self.settings.worker_poll_seconds)

    async def _heartbeat(self, job: ClaimedJob, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        interval = max(self.settings.worker_lease_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                async with sessionmaker() as session:
                    if not await queue.renew_lease(session, job.id, self.worker_id, self.settings.worker_lease_seconds):
                        log.warning("lost the lease on job %d", job.id)
                        return
            except Exception:
                log.exception("renewing the lease on job %d failed", job.id)

    async def _execute(
        self, job: ClaimedJob, sessionmaker: async_sessionmaker[AsyncSession], resources: WorkerResources
    ) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(job, sessionmaker))
        started = asyncio.get_running_loop().time()
        try:
            async with sessionmaker() as session:
                context = JobContext(job=job, session=session, resources=resources)
                await self.handlers[job.kind](context)
                if await queue.mark_done(session, job.id, self.worker_id):
                    await session.commit()
                    for step in context.after_commit:
                        try:
                            step()
                        except Exception:
                            log.exception("a post-commit step of job %d failed", job.id)
                    log.info("job %d %s done in %.3fs (attempt %d)", job.id, job.kind,
                             asyncio.get_running_loop().time() - started, job.attempts)
                else:
                    # Another worker took the job over (our lease ran out): its run wins, ours leaves no trace.
                    await session.rollback()
                    log.warning("job %d %s finished after its lease was lost; discarded", job.id, job.kind)
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError)
            if not permanent:
                log.exception("job %d %s failed (attempt %d of %d)", job.id, job.kind, job.attempts, job.max_attempts)
            try:
                async with sessionmaker() as session:
                    state = await queue.mark_failed(
                        session, job, self.worker_id, f"{type(exc).__name__}: {exc}", permanent=permanent
                    )
                if state == "lost":
                    log.warning("job %d %s failed after its lease was lost; the new holder carries on", job.id,
                                job.kind)
                else:
                    log.log(logging.WARNING if state == "queued" else logging.ERROR, "job %d %s is now %s: %s",
                            job.id, job.kind, state, exc)
            except Exception:
                log.exception("recording the failure of job %d failed; its lease will expire", job.id)
        finally:
            heartbeat.cancel()


def run_worker(settings: Settings, handlers: dict[str, JobHandler], periodic: list[Periodic], *,
               burst: bool = False) -> None:
    """Run a worker until SIGINT or SIGTERM (or, in burst mode, until the queue is empty), then let running
    jobs finish."""

    async def main() -> None:
        worker = Worker(settings, handlers, periodic, burst=burst)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()

    asyncio.run(main())


__all__ = ["Worker", "WorkerResources", "run_worker"]
