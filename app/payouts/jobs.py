"""Background work of payouts: crediting sales, the scheduler, and the senders that work through the queue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.checkout.events import CREDIT_ATTEMPTS
from app.checkout.models import Order
from app.payouts import clock, ledger, queue
from app.worker.queue import JobContext, Periodic, enqueue

log = logging.getLogger("fairshelf.payouts")


async def credit_sale(ctx: JobContext) -> None:
    """Credit a paid order to its creator, net of the fee the processor took (asked for, so it can fail and be
    retried; the entry is written once whatever happens)."""
    row = (await ctx.session.execute(select(Order.payment_intent_id, Order.amount_cents)
                                     .where(Order.id == ctx.job.payload["order_id"]))).one_or_none()
    if row is None:
        return
    settings = ctx.resources.settings
    fee = await ctx.resources.gateway.sale_fee(row.payment_intent_id, row.amount_cents) if row.payment_intent_id else 0
    await ledger.credit_sale(ctx.session, ctx.job.payload["order_id"], fee, ledger.hold_of(settings.payout_hold_days))


async def credit_missing(ctx: JobContext) -> None:
    """Ask again for every recent paid order whose sale is still not credited (never a sale silently unpaid)."""
    hour = int(datetime.now(UTC).timestamp()) // 3600
    missing = await ledger.uncredited(ctx.session)
    for order_id in missing:
        await enqueue(ctx.session, "payouts.credit_sale", {"order_id": order_id}, dedupe_key=f"credit:{order_id}:{hour}",
                      max_attempts=CREDIT_ATTEMPTS)
    if missing:
        log.warning("%d paid order(s) were not credited yet; asked again", len(missing))


async def schedule(ctx: JobContext) -> None:
    settings = ctx.resources.settings
    await queue.schedule(ctx.session, settings, await clock.now(ctx.session, settings))


async def send(ctx: JobContext) -> None:
    r = ctx.resources
    await queue.drain(r.sessionmaker, r.gateway, r.settings, f"payouts-job-{ctx.job.id}", r.mailer)


JOBS = {"payouts.credit_sale": credit_sale, "payouts.credit_missing": credit_missing, "payouts.schedule": schedule,
        "payouts.send": send}
# The scheduler looks every hour and pays once per payout period; the senders look every minute for payouts whose
# back-off has passed or whose worker stopped mid-way.
PERIODIC = [Periodic("payouts.schedule", timedelta(hours=1)), Periodic("payouts.send", timedelta(minutes=1)),
            Periodic("payouts.credit_missing", timedelta(hours=1))]
