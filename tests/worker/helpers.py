"""Running real worker processes (`python -m app worker`) and async queue code from synchronous tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import make_engine, make_sessionmaker
from app.settings import Settings
from app.worker import queue
from tests.conftest import ROOT, TEST_SECRET

T = TypeVar("T")


def run_async(settings: Settings, fn: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `fn(sessionmaker)` on a fresh engine in its own event loop, disposing the engine afterwards."""

    async def main() -> T:
        engine = make_engine(settings)
        try:
            return await fn(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def wait_for(check: Callable[[], T], *, timeout: float, what: str, alive: Sequence[WorkerProcess] = (),
             interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail with `what` (and the workers' logs) on timeout or
    when one of the `alive` workers exits early."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        for worker in alive:
            if worker.proc.poll() is not None:
                code = worker.proc.returncode
                raise AssertionError(f"worker exited ({code}) while waiting for {what}:\n{worker.log()}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.log() for w in alive)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(interval)


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return f"--- worker {self.pid} log ---\n" + self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, like a crashed machine."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not exit within {timeout}s:\n{self.log()}") from None


class Workers:
    """Starts worker processes against the test database and kills whatever is left at teardown."""

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SMTP_", "WORKER_", "MAIL_", "DEV_MAILBOX", "DATABASE_", "DB_"))}
        env.update({
            "MODE": "test",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": TEST_SECRET,
            "WORKER_LEASE_SECONDS": "2",
            "WORKER_POLL_SECONDS": "0.2",
            "SMTP_HOST": "",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(overrides)
        return env

    def start(self, *args: str, **env: str) -> WorkerProcess:
        log_path = self.log_dir / f"worker-{len(self.started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", *args], cwd=ROOT, env=self.env(**env),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        worker = WorkerProcess(proc, log_path)
        self.started.append(worker)
        return worker

    def burst(self, *args: str, timeout: float = 20, **env: str) -> WorkerProcess:
        """Run a worker in burst mode to completion; it must exit cleanly."""
        worker = self.start("--burst", *args, **env)
        code = worker.wait(timeout)
        assert code == 0, worker.log()
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.proc.poll() is None:
                worker.kill()


def listening_workers(db: psycopg.Connection) -> int:
    """How many connections of this database are LISTENing for job notifications (one per live worker)."""
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query = 'LISTEN fairshelf_jobs' AND state = 'idle'"
    ).fetchone()[0]


def scalar(db: psycopg.Connection, sql: str, *params: object) -> Any:
    return db.execute(sql, params).fetchone()[0]


def seconds_until_run(db: psycopg.Connection, job_id: int) -> float:
    return float(scalar(db, "SELECT extract(epoch FROM run_at - now()) FROM jobs WHERE id = %s", job_id))


def fast_forward(db: psycopg.Connection, job_id: int) -> None:
    """Make a backed-off job due now, instead of waiting out its back-off."""
    db.execute("UPDATE jobs SET run_at = now() WHERE id = %s", (job_id,))


def job(db: psycopg.Connection, job_id: int) -> dict[str, Any]:
    row = db.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
    names = [c.name for c in row.description]
    values = row.fetchone()
    assert values is not None, f"job {job_id} does not exist"
    return dict(zip(names, values, strict=True))


def enqueue(settings: Settings, kind: str, payload: dict[str, Any] | None = None, *, count: int = 1,
            **options: Any) -> list[int]:
    """Enqueue `count` jobs with the real `enqueue`, in one committed transaction; returns their ids."""

    async def go(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
        async with sessionmaker() as session:
            ids = [await queue.enqueue(session, kind, payload, **options) for _ in range(count)]
            await session.commit()
        return ids  # type: ignore[return-value]

    return run_async(settings, go)
