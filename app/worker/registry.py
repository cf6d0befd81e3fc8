"""Every job kind the worker knows, collected from each area's jobs module, plus the queue's own upkeep."""

from __future__ import annotations

import importlib
from datetime import timedelta

from app.worker.queue import JobContext, JobHandler, Periodic, purge_finished

AREAS = ("app.accounts.jobs", "app.checkout.jobs", "app.discovery.jobs", "app.mail.jobs", "app.media.jobs",
         "app.payouts.jobs")


async def purge_finished_jobs(ctx: JobContext) -> None:
    await purge_finished(ctx.session, older_than=timedelta(days=14))


def collect(extra_modules: tuple[str, ...] = ()) -> tuple[dict[str, JobHandler], list[Periodic]]:
    handlers: dict[str, JobHandler] = {"worker.purge_finished_jobs": purge_finished_jobs}
    periodic = [Periodic("worker.purge_finished_jobs", timedelta(days=1))]
    for name in AREAS + extra_modules:
        module = importlib.import_module(name)
        handlers.update(module.JOBS)
        periodic.extend(getattr(module, "PERIODIC", []))
    return handlers, periodic
