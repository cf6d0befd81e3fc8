"""Applying the processor's events (stored by the webhook endpoint) to orders and tier subscriptions.

Handlers lock the row they change and only record facts that move forward, so a duplicate changes nothing and
events processed in any order end in the same state. An event about an order we cannot find yet (a dispute that
overtook the payment's completion) raises NotYetKnown: the job retries it with back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout import billing, orders
from app.checkout.contract import ContractBroken, Envelope, NotYetKnown, envelope, facts
from app.checkout.models import PaymentEvent
from app.checkout.orders import OrderFacts
from app.db.engine import driver_connection
from app.payouts import accounts, ledger
from app.payouts import queue as payout_queue
from app.settings import Settings
from app.worker.queue import JobContext, PermanentJobError, enqueue

log = logging.getLogger("fairshelf.checkout")
CREDIT_ATTEMPTS = 30  # asking the processor for a sale's fee: with back-off capped at an hour, a day and more


@dataclass(frozen=True, slots=True)
class Apply:
    db: AsyncSession  # the job's session (tier billing goes through the ORM: it is rare)
    conn: psycopg.AsyncConnection[Any]  # the same transaction's psycopg connection (orders: the hot path)
    event: Envelope
    facts: dict[str, Any]
    settings: Settings


Handler = Callable[[Apply], Awaitable[str]]


async def _session_event(a: Apply) -> str:
    f = a.facts
    if f["mode"] == "subscription":
        return await billing.session_completed(a.db, f, a.event) if a.event.type.endswith("completed") else "ignored"
    order_id = f["metadata.order_id"]
    order = await orders.lock_order(a.conn, "public_id", order_id)
    if order is None:
        return "ignored"  # not a session we created
    if order.checkout_session_id is None:
        order.checkout_session_id = f["id"]  # the app stopped between creating the session and saving its id
    elif order.checkout_session_id != f["id"]:
        raise ContractBroken(f"order {order_id} belongs to session {order.checkout_session_id}, not {f['id']}")
    if f["payment_intent"] and order.payment_intent_id is None:
        order.payment_intent_id = f["payment_intent"]
    kind = a.event.type.removeprefix("checkout.session.")
    paid = kind == "async_payment_succeeded" or (kind == "completed" and f["payment_status"] in
                                                 ("paid", "no_payment_required"))
    if paid:
        if f["amount_total"] != order.amount_cents or str(f["currency"]).upper() != order.currency:
            raise ContractBroken(f"order {order_id} is for {order.amount_cents} {order.currency}, "
                                 f"the session charged {f['amount_total']} {f['currency']}")
        if order.paid_at is None:
            order.paid_at = a.event.created
            # The creator's ledger is credited by its own job: the processor's fee has to be asked for.
            await enqueue(a.db, "payouts.credit_sale", {"order_id": order.id}, dedupe_key=f"credit:{order.id}",
                          max_attempts=CREDIT_ATTEMPTS)
    elif kind == "async_payment_failed":
        order.failed_at = order.failed_at or a.event.created
    elif kind == "expired":
        order.expired_at = order.expired_at or a.event.created
    await orders.settle(a.db, a.conn, order)
    return "processed"


async def _order_of_charge(conn: psycopg.AsyncConnection[Any], f: dict[str, Any]) -> OrderFacts | None:
    order = await orders.lock_order(conn, "public_id", f.get("transfer_group"))
    return order or await orders.lock_order(conn, "payment_intent_id", f["payment_intent"])


async def _reversal(a: Apply, order: OrderFacts, kind: str, amount: int, ref: str) -> None:
    """Record money reversed once per processor fact (kind + reference), however often the event comes, and its
    entry in the creator's ledger."""
    if amount > 0:
        cursor = await a.conn.execute(
            "INSERT INTO order_reversals (order_id, kind, amount_cents, currency, processor_ref) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (order.id, kind, amount, order.currency, ref))
        row = await cursor.fetchone()
        if row is not None:
            await ledger.record_reversal(a.conn, row[0], ledger.hold_of(a.settings.payout_hold_days))


async def _refunded(a: Apply) -> str:
    f = a.facts
    order = await _order_of_charge(a.conn, f)
    if order is None:
        if f.get("transfer_group") or f["payment_intent"]:
            raise NotYetKnown(f"no order for charge {f['id']} yet")
        return "ignored"
    refunded = min(int(f["amount_refunded"]), order.amount_cents)
    if refunded > order.amount_refunded_cents:
        # Each new cumulative total is one fact: the difference is what this refund returned to the buyer.
        await _reversal(a, order, "refund", refunded - order.amount_refunded_cents, f"{f['id']}:{refunded}")
        order.amount_refunded_cents = refunded
    order.charge_id = order.charge_id or f["id"]
    await orders.settle(a.db, a.conn, order)
    return "processed"


async def _dispute(a: Apply) -> str:
    f = a.facts
    order = await orders.lock_order(a.conn, "payment_intent_id", f["payment_intent"])
    if order is None:
        raise NotYetKnown(f"no order for payment {f['payment_intent']} yet")
    amount = min(int(f["amount"]), order.amount_cents)
    if a.event.type == "charge.dispute.created":
        await _reversal(a, order, "dispute", amount, f["id"])
        if order.dispute_status not in ("won", "lost"):
            order.dispute_status = "open"
    else:
        status = {"won": "won", "lost": "lost", "warning_closed": "won"}.get(f["status"])
        if status is None:
            return "ignored"
        await _reversal(a, order, "dispute", amount, f["id"])  # in case the opening event never came
        if status == "won":
            await _reversal(a, order, "dispute_won", amount, f["id"])
        order.dispute_status = status
    order.dispute_id = f["id"]
    order.charge_id = order.charge_id or f["charge"]
    await orders.settle(a.db, a.conn, order)
    return "processed"


async def _account_updated(a: Apply) -> str:
    return "processed" if await accounts.apply_status(a.db, a.event.object, a.event.created) else "ignored"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _session_event,
    "checkout.session.async_payment_succeeded": _session_event,
    "checkout.session.async_payment_failed": _session_event,
    "checkout.session.expired": _session_event,
    "charge.refunded": _refunded,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute,
    "customer.subscription.created": lambda a: billing.subscription_changed(a.db, a.facts, a.event),
    "customer.subscription.updated": lambda a: billing.subscription_changed(a.db, a.facts, a.event),
    "customer.subscription.deleted": lambda a: billing.subscription_changed(a.db, a.facts, a.event),
    "invoice.paid": lambda a: billing.invoice(a.db, a.facts, a.event),
    "invoice.payment_failed": lambda a: billing.invoice(a.db, a.facts, a.event),
    "account.updated": _account_updated,
    "transfer.reversed": lambda a: payout_queue.transfer_changed(a.conn, a.facts),
    "transfer.updated": lambda a: payout_queue.transfer_changed(a.conn, a.facts),
}


async def apply(db: AsyncSession, event_type: str, payload: dict[str, Any], settings: Settings) -> str:
    """Apply one stored event; returns its new state ("processed" or "ignored")."""
    handler = HANDLERS.get(event_type)
    if handler is None:
        return "ignored"
    env = envelope(payload)
    return await handler(Apply(db, await driver_connection(db), env, facts(env.type, env.object), settings))


async def process_event(ctx: JobContext) -> None:
    """The worker's job for one stored event. Its writes commit with the job's completion."""
    db = ctx.session
    event_id = ctx.job.payload["event_id"]
    conn = await driver_connection(db)
    cursor = await conn.execute("SELECT type, state, payload FROM payment_events WHERE id = %s FOR UPDATE",
                                (event_id,))
    row = await cursor.fetchone()
    if row is None or row[1] in ("processed", "ignored"):
        return
    try:
        state = await apply(db, row[0], row[2], ctx.resources.settings)
    except ContractBroken as exc:
        # Retrying cannot help: keep it visible (admin page) as failed, and finish the job.
        await _record_failure(ctx, event_id, f"contract: {exc}")
        raise PermanentJobError(str(exc)) from exc
    except Exception as exc:
        await _record_failure(ctx, event_id, f"{type(exc).__name__}: {exc}")
        raise
    await conn.execute("UPDATE payment_events SET state = %s, processed_at = now(), last_error = '', attempts = %s "
                       "WHERE id = %s", (state, ctx.job.attempts, event_id))


async def _record_failure(ctx: JobContext, event_id: int, error: str) -> None:
    """Note the failed attempt on the event itself, committed on its own after the job's work is rolled back."""
    await ctx.session.rollback()
    await ctx.session.execute(update(PaymentEvent).where(PaymentEvent.id == event_id)
                              .values(state="failed", attempts=ctx.job.attempts, last_error=error[:2000]))
    await ctx.session.commit()


async def backlog(db: AsyncSession) -> dict[str, tuple[int, float]]:
    """Stored events not processed yet, by state ("received", "failed"): how many, and the oldest one's age in
    seconds (webhook lag)."""
    rows = await db.execute(text(
        "SELECT state, count(*), COALESCE(extract(epoch FROM now() - min(received_at)), 0) FROM payment_events "
        "WHERE state IN ('received', 'failed') GROUP BY state"))
    found = {state: (0, 0.0) for state in ("received", "failed")}
    found.update({r[0]: (int(r[1]), float(r[2])) for r in rows})
    return found


async def recent(db: AsyncSession, limit: int = 100, state: str | None = None) -> list[PaymentEvent]:
    query = select(PaymentEvent).order_by(PaymentEvent.id.desc()).limit(limit)
    if state:
        query = query.where(PaymentEvent.state == state)
    return list(await db.scalars(query))
