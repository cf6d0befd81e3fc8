"""Rows for the ledger tests, written straight into PostgreSQL: a creator whose payout account is ready, paid
orders, reversals, and running the app's own async services against the test database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import new_public_id
from app.db.engine import driver_connection, make_engine, make_sessionmaker
from app.payouts import ledger
from app.settings import Settings
from tests.discovery.conftest import add_creator, add_item

T = TypeVar("T")
HOLD = timedelta(days=7)

# Everything a ledger scenario writes, emptied between examples (ledger_entries refuses DELETE, not TRUNCATE).
SCENARIO_TABLES = ("ledger_entries", "payouts", "order_reversals", "orders", "payout_runs", "jobs", "dev_clock")


@dataclass(frozen=True, slots=True)
class Shelf:
    """One creator with an item for sale and a payout account that can take payouts."""

    creator_id: int
    item_id: int
    account_id: str
    settings: Settings


def ready_creator(db: psycopg.Connection, settings: Settings, username: str = "ledger_maker") -> Shelf:
    creator_id = add_creator(db, username)
    public_id = add_item(db, creator_id, "Ledger Song", price_mode="fixed", price_cents=500)
    item_id = db.execute("SELECT id FROM items WHERE public_id = %s", (public_id,)).fetchone()[0]
    account_id = f"acct_{username}"
    db.execute("INSERT INTO payout_accounts (creator_id, stripe_account_id, charges_enabled, payouts_enabled, "
               "details_submitted) VALUES (%s, %s, true, true, true)", (creator_id, account_id))
    return Shelf(creator_id, item_id, account_id, settings)


def empty_scenario(db: psycopg.Connection) -> None:
    db.execute(f"TRUNCATE {', '.join(SCENARIO_TABLES)} RESTART IDENTITY CASCADE")


def run(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `work` with a session factory of its own on a fresh event loop (the engine is disposed after)."""

    async def main() -> T:
        engine = make_engine(settings, pool_size=4, max_overflow=2)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def paid_order(db: AsyncSession, shelf: Shelf, amount_cents: int, paid_at: datetime) -> int:
    """A paid order for the creator's item, as the completion event leaves it."""
    public_id = new_public_id()
    return int(await db.scalar(text(
        "INSERT INTO orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, state, paid_at, "
        "payment_intent_id, checkout_session_id) "
        "VALUES (:public_id, :item, :creator, :email, :amount, 'USD', 'paid', :paid_at, :intent, :session) "
        "RETURNING id"),
        {"public_id": public_id, "item": shelf.item_id, "creator": shelf.creator_id,
         "email": f"buyer-{public_id}@example.com", "amount": amount_cents, "paid_at": paid_at,
         "intent": f"pi_{public_id}", "session": f"cs_{public_id}"}))


async def reversal(db: AsyncSession, order_id: int, kind: str, amount_cents: int, ref: str) -> bool:
    """Record a refund, dispute or dispute won the way the event handler does (once per processor fact) and its
    ledger entry, written twice as a retried event would; False when the fact was recorded before."""
    conn: psycopg.AsyncConnection[Any] = await driver_connection(db)
    cursor = await conn.execute(
        "INSERT INTO order_reversals (order_id, kind, amount_cents, currency, processor_ref) "
        "VALUES (%s, %s, %s, 'USD', %s) ON CONFLICT DO NOTHING RETURNING id", (order_id, kind, amount_cents, ref))
    row = await cursor.fetchone()
    if row is None:
        return False
    await ledger.record_reversal(conn, row[0], HOLD)
    await ledger.record_reversal(conn, row[0], HOLD)
    return True


async def mark_paid(db: AsyncSession, payout_id: int) -> None:
    """What a sender does with a payout the processor took: processing, then paid with its transfer."""
    await db.execute(text("UPDATE payouts SET state = 'processing', attempts = attempts + 1 WHERE id = :id"),
                     {"id": payout_id})
    await db.execute(text("UPDATE payouts SET state = 'paid', transfer_id = 'tr_' || public_id, paid_at = now() "
                          "WHERE id = :id"), {"id": payout_id})
