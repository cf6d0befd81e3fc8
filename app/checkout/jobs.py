"""Background work of checkout: processing stored payment events, and cancelling replaced subscriptions."""

from __future__ import annotations

from app.checkout.events import process_event
from app.checkout.orders import announce_sale
from app.worker.queue import JobContext


async def cancel_subscription(ctx: JobContext) -> None:
    await ctx.resources.gateway.cancel_subscription(ctx.job.payload["subscription_id"])


async def sale_emails(ctx: JobContext) -> None:
    await announce_sale(ctx.session, ctx.job.payload["order_id"], ctx.resources.mailer, ctx.resources.settings)


JOBS = {"checkout.process_event": process_event, "checkout.cancel_subscription": cancel_subscription,
        "checkout.announce_sale": sale_emails}
