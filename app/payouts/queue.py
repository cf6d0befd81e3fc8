"""The payout queue: the scheduler that creates payouts from available balances, and the worker side that sends
them as transfers to creators' connected accounts, exactly once.

Exactly once: a payout is claimed (state processing, under a lease) and committed before the processor is called;
the transfer carries the payout's idempotency key; the result is recorded in a second transaction. A worker that
dies between the call and the record leaves the payout processing with an expiring lease; whoever claims it next
calls again with the same key and the processor answers with the transfer it already made. Processor keys expire
after a day, so a payout first tried longer ago than that looks for its transfer (by transfer group) before
calling again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.contract import NotYetKnown
from app.checkout.gateway import Gateway, TransferFailed, TransferRequest
from app.db.engine import driver_connection
from app.payouts.ledger import AVAILABLE
from app.settings import Settings
from app.worker.queue import enqueue

log = logging.getLogger("fairshelf.payouts")

LEASE_SECONDS = 120  # longer than the client's worst case (10 s timeout, two retries)
KEY_LIFETIME = timedelta(hours=23)  # the processor keeps idempotency keys for 24 hours
GAVE_UP = ("We could not complete this payout after several attempts. The money is back in your balance and goes "
           "out with the next payout.")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- Scheduling -------------------------------------------------------------------------------------------------

def slot_start(now: datetime, settings: Settings) -> datetime:
    """The start of the payout period `now` falls in (periods are counted from the Unix epoch)."""
    interval = timedelta(days=settings.payout_interval_days)
    return EPOCH + (now - EPOCH) // interval * interval


def next_payout_date(now: datetime, settings: Settings) -> datetime:
    return slot_start(now, settings) + timedelta(days=settings.payout_interval_days)


_CREATE = f"""
    WITH eligible AS (
        SELECT c.user_id AS creator_id, c.currency, a.stripe_account_id AS destination,
               (SELECT COALESCE(sum(l.amount_cents), 0) FROM ledger_entries l
                WHERE l.creator_id = c.user_id AND l.currency = c.currency AND {AVAILABLE}) AS available
        FROM creators c JOIN payout_accounts a ON a.creator_id = c.user_id
        WHERE a.payouts_enabled AND c.payouts_paused_reason = '' {{only}}
          AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.creator_id = c.user_id
                          AND p.state IN ('scheduled', 'processing'))
    ), made AS (
        INSERT INTO payouts (public_id, creator_id, amount_cents, currency, destination, idempotency_key)
        SELECT ids.public_id, e.creator_id, e.available, e.currency, e.destination, 'payout-' || ids.public_id
        FROM eligible e, LATERAL (SELECT substr(replace(gen_random_uuid()::text, '-', ''), 1, 16) AS public_id) ids
        WHERE e.available >= :minimum
        ON CONFLICT (creator_id) WHERE state IN ('scheduled', 'processing') DO NOTHING
        RETURNING id, creator_id, amount_cents, currency
    )
    INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, key)
    SELECT creator_id, currency, 'payout', -amount_cents, :now, id, 'payout:' || id FROM made
    RETURNING creator_id
"""
_CREATE_ALL = _CREATE.format(only="")
_CREATE_ONE = _CREATE.format(only="AND c.user_id = :only")


async def create_payouts(db: AsyncSession, settings: Settings, now: datetime) -> int:
    """A payout of the whole available balance for every creator at or above the minimum whose account can take
    it and who has none open, each debited in the same statement. Returns how many were made."""
    params = {"now": now, "minimum": settings.payout_minimum_cents}
    try:
        async with db.begin_nested():
            made = len((await db.execute(text(_CREATE_ALL), params)).all())
    except IntegrityError:
        # A refund landed between reading a balance and debiting it, so the database refused that payout (it may
        # never exceed the available balance) and the whole statement with it: go creator by creator instead.
        made = 0
        creators = (await db.execute(text(
            "SELECT creator_id FROM payout_accounts WHERE payouts_enabled ORDER BY creator_id"))).scalars().all()
        for creator_id in creators:
            try:
                async with db.begin_nested():
                    made += len((await db.execute(text(_CREATE_ONE), {**params, "only": creator_id})).all())
            except IntegrityError:
                log.warning("payout for creator %s refused: the balance changed; the next run tries again",
                            creator_id)
    if made:
        await wake_senders(db, settings)
    return made


async def wake_senders(db: AsyncSession, settings: Settings) -> None:
    """Enqueue enough sender jobs to fill the job slots of two workers (each sender claims payouts until none is
    due; one that finds nothing ends at once, so a spare costs a query)."""
    for _ in range(2 * max(settings.worker_concurrency, 1)):
        await enqueue(db, "payouts.send", {}, max_attempts=1)


async def schedule(db: AsyncSession, settings: Settings, now: datetime) -> int:
    """Run the scheduler once per payout period, however often (and on however many workers) it is called."""
    slot = slot_start(now, settings)
    first = await db.scalar(text("INSERT INTO payout_runs (slot_start) VALUES (:slot) ON CONFLICT DO NOTHING "
                                 "RETURNING slot_start"), {"slot": slot})
    if first is None:
        return 0
    made = await create_payouts(db, settings, now)
    await db.execute(text("UPDATE payout_runs SET payouts_created = :n WHERE slot_start = :slot"),
                     {"n": made, "slot": slot})
    log.info("payout run for %s: %d payouts", slot.isoformat(), made)
    return made


# --- Sending ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    public_id: str
    creator_id: int
    amount_cents: int
    currency: str
    destination: str
    idempotency_key: str
    attempts: int
    first_attempt_at: datetime


# A payout in `processing` whose lease ran out (next_attempt_at doubles as the lease's end) is claimable again. A
# paused creator's payout waits (pausing cancels a scheduled one; this covers one being retried meanwhile).
_CLAIM = """
    UPDATE payouts SET state = 'processing', attempts = attempts + 1, locked_by = %(worker)s,
           locked_until = now() + make_interval(secs => %(lease)s),
           next_attempt_at = now() + make_interval(secs => %(lease)s),
           first_attempt_at = COALESCE(first_attempt_at, now())
    WHERE id = (SELECT p.id FROM payouts p
                WHERE p.state IN ('scheduled', 'processing') AND p.next_attempt_at <= now()
                  AND NOT EXISTS (SELECT 1 FROM creators c WHERE c.user_id = p.creator_id
                                  AND c.payouts_paused_reason <> '')
                ORDER BY p.next_attempt_at LIMIT 1 FOR UPDATE OF p SKIP LOCKED)
    RETURNING id, public_id, creator_id, amount_cents, currency, destination, idempotency_key, attempts,
              first_attempt_at
"""
_PAID = """
    UPDATE payouts SET state = 'paid', transfer_id = %(transfer)s, paid_at = now(), locked_by = NULL,
           locked_until = NULL, last_error = ''
    WHERE id = %(id)s AND state = 'processing'
"""
_RETRY = """
    UPDATE payouts SET state = 'scheduled', next_attempt_at = now() + make_interval(secs => %(delay)s),
           last_error = %(error)s, locked_by = NULL, locked_until = NULL
    WHERE id = %(id)s AND state = 'processing' AND locked_by = %(worker)s
"""
_FAILED = """
    UPDATE payouts SET state = 'failed', failed_at = now(), failure_reason = %(reason)s, last_error = %(error)s,
           locked_by = NULL, locked_until = NULL
    WHERE id = %(id)s AND state IN ('processing', 'scheduled') AND (state = 'scheduled' OR locked_by = %(worker)s)
    RETURNING creator_id
"""
_RETURN = """
    INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, key, memo)
    SELECT creator_id, currency, 'payout_reversal', amount_cents, now(), id, 'payout_return:' || id, %(memo)s
    FROM payouts WHERE id = %(id)s
    ON CONFLICT (key) DO NOTHING
"""


def backoff(attempts: int, *, rate_limited: bool = False) -> float:
    """Seconds before the next attempt: 1, 2, 4 … minutes, at most 6 hours, with jitter; longer when the
    processor asked us to slow down."""
    base = 60.0 * 2 ** max(attempts - 1, 0) * (4 if rate_limited else 1)
    return min(base, 6 * 3600) * random.uniform(0.8, 1.2)


async def _claim(conn: psycopg.AsyncConnection[Any], worker_id: str) -> Claimed | None:
    cursor = await conn.execute(_CLAIM, {"worker": worker_id, "lease": LEASE_SECONDS})
    row = await cursor.fetchone()
    return Claimed(*row) if row else None


async def send_one(sessionmaker: async_sessionmaker[AsyncSession], gateway: Gateway, settings: Settings,
                   worker_id: str, mailer: Any = None) -> tuple[Claimed, str] | None:
    """Claim one due payout, send it, record the outcome; returns it with its new state, or None if none is due."""
    async with sessionmaker() as db:
        conn = await driver_connection(db)
        payout = await _claim(conn, worker_id)
        await db.commit()
    if payout is None:
        return None
    request = TransferRequest(payout.public_id, payout.amount_cents, payout.currency, payout.destination,
                              payout.idempotency_key)
    try:
        transfer = None
        if datetime.now(UTC) - payout.first_attempt_at > KEY_LIFETIME:
            transfer = await gateway.find_transfer(payout.public_id)  # our key may be gone: never send twice
        transfer = transfer or await gateway.create_transfer(request)
    except TransferFailed as failure:
        return payout, await _failed(sessionmaker, gateway, settings, worker_id, payout, failure, mailer)
    await _record_paid(sessionmaker, payout, transfer)
    return payout, "paid"


async def _record_paid(sessionmaker: async_sessionmaker[AsyncSession], payout: Claimed, transfer: str) -> None:
    async with sessionmaker() as db:
        conn = await driver_connection(db)
        cursor = await conn.execute(_PAID, {"transfer": transfer, "id": payout.id})
        if cursor.rowcount == 0:
            # The payout ended otherwise while this call was out (its lease had run out and someone canceled it):
            # the processor made a transfer the ledger does not show. Never silent: the admin page shows this.
            log.error("transfer %s was made for payout %s, which is no longer processing: reconcile it",
                      transfer, payout.public_id)
            await conn.execute("UPDATE payouts SET last_error = %s WHERE id = %s",
                               (f"RECONCILE: transfer {transfer} was made after this payout had ended", payout.id))
        await db.commit()


async def _failed(sessionmaker: async_sessionmaker[AsyncSession], gateway: Gateway, settings: Settings,
                  worker_id: str, payout: Claimed, failure: TransferFailed, mailer: Any) -> str:
    error = failure.detail[:2000]
    if failure.retryable and payout.attempts >= settings.payout_max_attempts:
        # Giving up is only safe once we know no transfer was made (an unanswered call may have made one).
        try:
            found = await gateway.find_transfer(payout.public_id)
        except TransferFailed:
            found = None
            failure = TransferFailed(error, retryable=True)  # cannot tell: keep trying, slowly
        else:
            if found:
                await _record_paid(sessionmaker, payout, found)
                return "paid"
            failure = TransferFailed(error, retryable=False, reason=GAVE_UP)
    async with sessionmaker() as db:
        conn = await driver_connection(db)
        if failure.retryable:
            await conn.execute(_RETRY, {"id": payout.id, "worker": worker_id, "error": error,
                                        "delay": backoff(payout.attempts, rate_limited=failure.rate_limited)})
            await db.commit()
            log.warning("payout %s will be retried: %s", payout.public_id, error)
            return "scheduled"
        await fail(db, payout.id, failure.reason, error, mailer, worker_id)
        await db.commit()
    log.error("payout %s failed: %s", payout.public_id, error)
    return "failed"


async def fail(db: AsyncSession, payout_id: int, reason: str, error: str, mailer: Any,
               worker_id: str | None = None) -> bool:
    """End a payout for good: the money returns to the balance (one entry) and the creator is told why."""
    conn = await driver_connection(db)
    cursor = await conn.execute(_FAILED, {"id": payout_id, "reason": reason, "error": error, "worker": worker_id})
    if await cursor.fetchone() is None:
        return False
    await return_money(conn, payout_id, reason)
    if mailer is not None:
        await tell_creator(db, payout_id, mailer)
    return True


async def return_money(conn: psycopg.AsyncConnection[Any], payout_id: int, memo: str) -> None:
    """The ledger side of a payout that will not be sent (failed or canceled): its amount back, once."""
    await conn.execute(_RETURN, {"id": payout_id, "memo": memo[:500]})


async def tell_creator(db: AsyncSession, payout_id: int, mailer: Any) -> None:
    row = (await db.execute(text(
        "SELECT p.public_id, p.amount_cents, p.currency, p.failure_reason, u.email, u.display_name "
        "FROM payouts p JOIN users u ON u.id = p.creator_id WHERE p.id = :id"), {"id": payout_id})).one()
    await mailer.queue(db, row.email, "payout_failed", payout=row, creator=row.display_name)


async def drain(sessionmaker: async_sessionmaker[AsyncSession], gateway: Gateway, settings: Settings,
                worker_id: str, mailer: Any = None, budget_seconds: float = 300.0) -> int:
    """Send due payouts one after another until none is due (or the time budget is spent); returns how many
    were handled. Several drains run side by side: SKIP LOCKED gives each a different payout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    handled = 0
    while loop.time() < deadline:
        done = await send_one(sessionmaker, gateway, settings, worker_id, mailer)
        if done is None:
            return handled
        handled += 1
        if done[1] == "scheduled":
            await asyncio.sleep(1.0)  # the processor is struggling or rate-limiting us: ease off
    async with sessionmaker() as db:  # out of time with work left: hand over to a fresh job
        await enqueue(db, "payouts.send", {}, max_attempts=1)
        await db.commit()
    return handled


# --- What the processor reports later ---------------------------------------------------------------------------

async def transfer_changed(conn: psycopg.AsyncConnection[Any], facts: dict[str, Any]) -> str:
    """transfer.reversed / transfer.updated: money taken back from a paid payout returns to the creator's balance,
    once per new cumulative reversed amount."""
    payout_id = (facts.get("metadata.payout_id") or facts.get("transfer_group") or "")
    cursor = await conn.execute("SELECT id, state, transfer_id, amount_reversed_cents FROM payouts "
                                "WHERE public_id = %s FOR UPDATE", (payout_id,))
    row = await cursor.fetchone()
    if row is None:
        return "ignored"  # not one of our payouts
    pk, state, transfer_id, reversed_before = row
    if transfer_id is None:
        raise NotYetKnown(f"payout {payout_id} has not recorded its transfer yet")
    if transfer_id != facts["id"]:
        return "ignored"
    reversed_now = min(int(facts["amount_reversed"]), int(facts["amount"]))
    if reversed_now <= reversed_before:
        return "processed"
    await conn.execute(
        "INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, key, memo) "
        "SELECT creator_id, currency, 'payout_reversal', %(diff)s, now(), id, %(key)s, 'transfer reversed' "
        "FROM payouts WHERE id = %(id)s ON CONFLICT (key) DO NOTHING",
        {"diff": reversed_now - reversed_before, "key": f"transfer_reversal:{transfer_id}:{reversed_now}", "id": pk})
    await conn.execute("UPDATE payouts SET amount_reversed_cents = %s WHERE id = %s", (reversed_now, pk))
    return "processed"
