"""CSV exports of a creator's sales, payouts and ledger, streamed from a server-side cursor: a 100,000-row export
holds a thousand rows in memory at a time, and the first bytes go out before the last row is read."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payouts.ledger import ENTRY_LINES

BATCH = 1000


def cents(value: int | None) -> str:
    """Cents as a decimal amount, exactly: -1234 → "-12.34"."""
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(int(value)), 100)
    return f"{sign}{whole}.{part:02d}"


def cell(value: Any) -> str:
    """A text cell that a spreadsheet will not run as a formula (a title starting with "=" stays text)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass(frozen=True, slots=True)
class Export:
    header: tuple[str, ...]
    sql: str
    row: Callable[[Any], list[str]]


EXPORTS = {
    "sales": Export(
        ("order", "created", "paid", "item", "buyer_email", "amount", "currency", "state", "refunded",
         "processor_fee", "net"),
        """SELECT o.public_id, o.created_at, o.paid_at, i.title, o.buyer_email, o.amount_cents, o.currency, o.state,
                  o.amount_refunded_cents, l.gross_cents - l.amount_cents AS fee, l.amount_cents AS net
           FROM orders o JOIN items i ON i.id = o.item_id
           LEFT JOIN ledger_entries l ON l.key = 'sale:' || o.id
           WHERE o.creator_id = :creator AND o.state <> 'pending' ORDER BY o.id""",
        lambda r: [cell(r[0]), cell(r[1]), cell(r[2]), cell(r[3]), cell(r[4]), cents(r[5]), cell(r[6]), cell(r[7]),
                   cents(r[8]), cents(r[9]), cents(r[10])],
    ),
    "payouts": Export(
        ("payout", "created", "state", "amount", "currency", "paid", "transfer", "reversed", "attempts", "reason"),
        """SELECT public_id, created_at, state, amount_cents, currency, paid_at, transfer_id, amount_reversed_cents,
                  attempts, failure_reason
           FROM payouts WHERE creator_id = :creator ORDER BY id""",
        lambda r: [cell(r[0]), cell(r[1]), cell(r[2]), cents(r[3]), cell(r[4]), cell(r[5]), cell(r[6]), cents(r[7]),
                   str(r[8]), cell(r[9])],
    ),
    "ledger": Export(
        ("entry", "created", "kind", "amount", "gross", "currency", "available", "memo", "order", "item", "payout"),
        f"{ENTRY_LINES} ORDER BY l.id",
        lambda r: [str(r.id), cell(r.created_at), r.kind, cents(r.amount_cents), cents(r.gross_cents), r.currency,
                   cell(r.available_at), cell(r.memo), cell(r.order_id), cell(r.item_title), cell(r.payout_id)],
    ),
}


async def stream(sessionmaker: async_sessionmaker[AsyncSession], what: str, creator_id: int) -> AsyncIterator[bytes]:
    """The export as CSV chunks, read in a session of its own (the response outlives the request's session)."""
    export = EXPORTS[what]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export.header)
    async with sessionmaker() as db:
        result = await db.stream(text(export.sql), {"creator": creator_id})
        async for rows in result.partitions(BATCH):
            for row in rows:
                writer.writerow(export.row(row))
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
