"""The creator's ledger: append-only entries in integer cents, one per fact, and the balances they sum to.

A sale is credited net of the processor's fee and becomes available after the hold period. A refund, dispute or
dispute won moves the same money back, available from the later of now and the end of the sale's hold, so money
still on hold is netted there. Payouts debit at once; a payout that failed for good is credited back. Every writer
names its fact in `key` (sale:<order>, refund:<reversal>, payout:<payout> …), so a retry can never write twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.web.errors import FormInvalid

REVERSAL_ENTRY = """
    INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, order_id, reversal_id, key)
    SELECT o.creator_id, r.currency, r.kind,
           CASE WHEN r.kind = 'dispute_won' THEN r.amount_cents ELSE -r.amount_cents END,
           greatest(now(), o.paid_at + make_interval(secs => %(hold)s)), o.id, r.id, r.kind || ':' || r.id
    FROM order_reversals r JOIN orders o ON o.id = r.order_id
    WHERE r.id = %(reversal)s
    ON CONFLICT (key) DO NOTHING
"""


# What counts as available at :now. A payout entry counts whatever its date: it is dated by the payout clock,
# and money paid out must never look available again if that clock is set back. (The same rule is in the
# database's check of each payout, migration 0006.)
AVAILABLE = "(available_at <= :now OR kind = 'payout')"


def hold_of(hold_days: int) -> timedelta:
    return timedelta(days=hold_days)


async def credit_sale(db: AsyncSession, order_id: int, fee_cents: int, hold: timedelta) -> bool:
    """Credit a paid order, net of the processor's fee; False when it was credited before (or is not paid)."""
    row = await db.execute(text("""
        INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, gross_cents, available_at, order_id, key)
        SELECT creator_id, currency, 'sale', amount_cents - :fee, amount_cents, paid_at + :hold, id, 'sale:' || id
        FROM orders WHERE id = :order AND paid_at IS NOT NULL AND amount_cents > :fee
        ON CONFLICT (key) DO NOTHING RETURNING id
    """), {"order": order_id, "fee": fee_cents, "hold": hold})
    return row.scalar_one_or_none() is not None


# Paid orders from the last weeks whose sale has no ledger entry an hour after payment (the credit job ran out of
# attempts, or was lost): the sweep asks again, and the admin page counts them.
UNCREDITED = """
    FROM orders o
    WHERE o.paid_at > now() - interval '35 days' AND o.paid_at < now() - interval '1 hour'
      AND NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.key = 'sale:' || o.id)
"""


async def uncredited(db: AsyncSession, limit: int = 1000) -> list[int]:
    return list((await db.execute(text(f"SELECT o.id {UNCREDITED} ORDER BY o.paid_at LIMIT :limit"),
                                  {"limit": limit})).scalars())


async def record_reversal(conn: psycopg.AsyncConnection[Any], reversal_id: int, hold: timedelta) -> None:
    """The ledger side of a refund, dispute or dispute won (in the event handler's transaction)."""
    await conn.execute(REVERSAL_ENTRY, {"reversal": reversal_id, "hold": hold.total_seconds()})


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    total: int
    available: int  # what a payout may take now (negative after a refund of money already paid out)

    @property
    def on_hold(self) -> int:
        return self.total - self.available


async def balance(db: AsyncSession, creator_id: int, currency: str, now: datetime) -> Balance:
    row = (await db.execute(text(
        f"SELECT COALESCE(sum(amount_cents), 0), COALESCE(sum(amount_cents) FILTER (WHERE {AVAILABLE}), 0) "
        "FROM ledger_entries WHERE creator_id = :creator AND currency = :currency"),
        {"creator": creator_id, "currency": currency, "now": now})).one()
    return Balance(currency, int(row[0]), int(row[1]))


@dataclass(frozen=True, slots=True)
class Earnings:
    """What sales brought in (net of fees, refunds and disputes) over a window, and how many sales."""

    today: int
    week: int
    month: int
    all_time: int
    sales_month: int


EARNING_KINDS = ("sale", "refund", "dispute", "dispute_won")


async def earnings(db: AsyncSession, creator_id: int, currency: str, now: datetime) -> Earnings:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = (await db.execute(text("""
        SELECT COALESCE(sum(amount_cents) FILTER (WHERE created_at >= :today), 0),
               COALESCE(sum(amount_cents) FILTER (WHERE created_at >= :week), 0),
               COALESCE(sum(amount_cents) FILTER (WHERE created_at >= :month), 0),
               COALESCE(sum(amount_cents), 0),
               count(*) FILTER (WHERE kind = 'sale' AND created_at >= :month)
        FROM ledger_entries
        WHERE creator_id = :creator AND currency = :currency AND kind = ANY(:kinds)
    """), {"creator": creator_id, "currency": currency, "kinds": list(EARNING_KINDS), "today": midnight,
           "week": now - timedelta(days=7), "month": now - timedelta(days=30)})).one()
    return Earnings(*(int(v) for v in row))


async def recent_entries(db: AsyncSession, creator_id: int, limit: int = 20) -> list[dict[str, Any]]:
    rows = await db.execute(text(f"{ENTRY_LINES} ORDER BY l.id DESC LIMIT :limit"),
                            {"creator": creator_id, "limit": limit})
    return [dict(r._mapping) for r in rows]


# What a ledger line shows (the dashboard's recent entries and the CSV export): the entry and what caused it.
ENTRY_COLUMNS = ("l.id, l.created_at, l.kind, l.amount_cents, l.gross_cents, l.currency, l.available_at, l.memo, "
                 "o.public_id AS order_id, i.title AS item_title, p.public_id AS payout_id")
ENTRY_LINES = f"""
    SELECT {ENTRY_COLUMNS} FROM ledger_entries l
    LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN items i ON i.id = o.item_id
    LEFT JOIN payouts p ON p.id = l.payout_id
    WHERE l.creator_id = :creator
"""


# Digits with an optional thousands separator in its proper places ("1,000.00"); a decimal comma ("12,50") is
# refused rather than read as a hundred times the amount.
_ADJUSTMENT = re.compile(r"([+-]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,6})(?:\.([0-9]{1,2}))?", re.ASCII)


def parse_adjustment(form: dict[str, str]) -> int:
    """An admin's adjustment in cents from "12.50" or "-3" (dollars), never zero."""
    match = _ADJUSTMENT.fullmatch(form.get("amount", "").strip())
    if match is None or len(match.group(2).replace(",", "")) > 6:
        raise FormInvalid({"amount": "Give an amount like 12.50 or -3.00 (at most 999,999.99)."})
    sign, whole, fraction = match.groups()
    whole = whole.replace(",", "")
    cents = (-1 if sign == "-" else 1) * (int(whole) * 100 + int((fraction or "0").ljust(2, "0")))
    if cents == 0:
        raise FormInvalid({"amount": "An adjustment of zero changes nothing."})
    return cents


async def adjust(db: AsyncSession, creator_id: int, currency: str, amount_cents: int, actor_id: int,
                 reason: str, nonce: str) -> bool:
    """A manual entry by an admin, available at once. `nonce` comes with the form, so submitting it twice writes
    one entry; False when it was written before."""
    row = await db.execute(text(
        "INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, memo) "
        "VALUES (:creator, :currency, 'adjustment', :amount, now(), :actor, :key, :memo) "
        "ON CONFLICT (key) DO NOTHING RETURNING id"),
        {"creator": creator_id, "currency": currency, "amount": amount_cents, "actor": actor_id,
         "key": f"adjustment:{nonce}", "memo": reason})
    return row.scalar_one_or_none() is not None
