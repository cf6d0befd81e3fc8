"""Background work of payouts: crediting sales, the scheduler, and the senders that work through the queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.checkout.models import Order
from app.payouts import clock, ledger, queue
from app.worker.queue import JobContext, Periodic


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


async def schedule(ctx: JobContext) -> None:
    settings = ctx.resources.settings
    await queue.schedule(ctx.session, settings, await clock.now(ctx.session, settings))


async def send(ctx: JobContext) -> None:
    r = ctx.resources
    await queue.drain(r.sessionmaker, r.gateway, r.settings, f"payouts-job-{ctx.job.id}", r.mailer)


JOBS = {"payouts.credit_sale": credit_sale, "payouts.schedule": schedule, "payouts.send": send}
# The scheduler looks every hour and pays once per payout period; the senders look every minute for payouts whose
# back-off has passed or whose worker stopped mid-way.
PERIODIC = [Periodic("payouts.schedule", timedelta(hours=1)), Periodic("payouts.send", timedelta(minutes=1))]
