"""The admin's side of the payout queue: totals by state, what failed or is stuck, creators held back and why,
and the actions (retry, cancel, pause, resume, adjust, pay out now), each written to the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.audit import service as audit
from app.catalog.models import Creator
from app.checkout.gateway import Gateway, TransferFailed
from app.db.engine import driver_connection
from app.payouts import ledger, queue
from app.payouts.ledger import AVAILABLE
from app.payouts.models import PAYOUT_STATES, Payout
from app.settings import Settings
from app.web.errors import Conflict, FormInvalid, NotFound

PAGE = 50
USERNAME = re.compile(r"[a-z0-9_]{3,30}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Total:
    state: str
    count: int
    amount: int


async def totals(db: AsyncSession) -> list[Total]:
    rows = dict((r[0], (int(r[1]), int(r[2]))) for r in await db.execute(text(
        "SELECT state, count(*), COALESCE(sum(amount_cents), 0) FROM payouts GROUP BY state")))
    return [Total(state, *rows.get(state, (0, 0))) for state in PAYOUT_STATES]


async def listing(db: AsyncSession, which: str) -> list[dict[str, Any]]:
    """failed, stuck (processing past its lease, or waiting out retries) or recent payouts, with their creator."""
    where = {
        "failed": "p.state = 'failed'",
        "stuck": "(p.state = 'processing' AND p.locked_until < now()) OR (p.state = 'scheduled' AND p.attempts > 0)"
                 " OR p.last_error LIKE 'RECONCILE:%'",
        "recent": "true",
    }[which]
    rows = await db.execute(text(f"""
        SELECT p.public_id, p.state, p.amount_cents, p.currency, p.attempts, p.next_attempt_at, p.locked_until,
               p.last_error, p.failure_reason, p.transfer_id, p.created_at, p.paid_at, u.username
        FROM payouts p JOIN users u ON u.id = p.creator_id
        WHERE {where} ORDER BY p.id DESC LIMIT {PAGE}"""))
    return [dict(r._mapping) for r in rows]


async def held_back(db: AsyncSession, now: datetime, settings: Settings) -> list[dict[str, Any]]:
    """Creators with enough available money who will not be paid, and why (never a silent skip)."""
    rows = await db.execute(text(f"""
        SELECT u.username, c.currency, c.payouts_paused_reason, a.payouts_enabled, a.stripe_account_id, b.available
        FROM creators c JOIN users u ON u.id = c.user_id
        LEFT JOIN payout_accounts a ON a.creator_id = c.user_id
        CROSS JOIN LATERAL (SELECT COALESCE(sum(amount_cents), 0) AS available FROM ledger_entries l
                            WHERE l.creator_id = c.user_id AND l.currency = c.currency AND {AVAILABLE}) b
        WHERE b.available >= :minimum AND (c.payouts_paused_reason <> '' OR a.payouts_enabled IS NOT TRUE)
        ORDER BY b.available DESC LIMIT :limit"""), {"now": now, "minimum": settings.payout_minimum_cents,
                                                     "limit": PAGE})
    found = []
    for r in rows:
        if r.payouts_paused_reason:
            why = f"paused: {r.payouts_paused_reason}"
        elif r.stripe_account_id is None:
            why = "no payout account connected"
        else:
            why = "the payout account cannot receive payouts yet"
        found.append({"username": r.username, "currency": r.currency, "available": int(r.available), "why": why})
    return found


async def queue_health(db: AsyncSession) -> dict[str, float]:
    """What an operator watches (/metrics): open payouts by state, failures of the last day, how long the oldest
    due payout has waited, and sales not credited yet. Each one an index scan."""
    row = (await db.execute(text("""
        SELECT count(*) FILTER (WHERE state = 'scheduled'), count(*) FILTER (WHERE state = 'processing'),
               COALESCE(extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now())), 0)
        FROM payouts WHERE state IN ('scheduled', 'processing')"""))).one()
    failed = await db.scalar(text("SELECT count(*) FROM payouts WHERE state = 'failed' "
                                  "AND failed_at > now() - interval '1 day'"))
    return {"scheduled": int(row[0]), "processing": int(row[1]), "oldest_due_seconds": float(row[2]),
            "failed_last_day": int(failed or 0), "sales_not_credited": await uncredited_count(db)}


async def uncredited_count(db: AsyncSession) -> int:
    return int(await db.scalar(text(f"SELECT count(*) {ledger.UNCREDITED}")) or 0)


async def _payout(db: AsyncSession, public_id: str) -> Payout:
    payout = (await db.scalars(select(Payout).where(Payout.public_id == public_id[:16]).with_for_update())).first()
    if payout is None:
        raise NotFound("There is no such payout.")
    return payout


async def retry(db: AsyncSession, settings: Settings, actor: int, public_id: str, reason: str) -> None:
    """Send a payout now instead of waiting out its back-off, or take over one whose worker stopped."""
    payout = await _payout(db, public_id)
    stuck = payout.state == "processing" and payout.locked_until is not None and \
        payout.locked_until < await db.scalar(text("SELECT now()"))
    if payout.state != "scheduled" and not stuck:
        raise Conflict(f"Payout {payout.public_id} is {payout.state}: only a waiting or stuck payout can be retried.")
    await db.execute(text("UPDATE payouts SET next_attempt_at = now() WHERE id = :id"), {"id": payout.id})
    await audit.record(db, actor, "payout.retry", f"payout:{payout.public_id}", reason, state=payout.state)
    await queue.wake_senders(db, settings)


async def cancel(db: AsyncSession, gateway: Gateway, mailer: Any, actor: int, public_id: str, reason: str) -> None:
    """Stop a payout that has not been sent: its money returns to the balance (one entry) and the creator is
    told. A payout tried before may have reached the processor without our hearing back, so the processor is
    asked first: a transfer it made is recorded as paid instead."""
    payout = await _payout(db, public_id)
    if payout.state != "scheduled":
        raise Conflict(f"Payout {payout.public_id} is {payout.state}: only a payout waiting to be sent can be "
                       "canceled.")
    transfer = await _stop(db, gateway, mailer, actor, payout, reason)
    if transfer is not None:
        await db.commit()
        raise Conflict(f"The processor had already made transfer {transfer} for payout {payout.public_id}: "
                       "it is recorded as paid and was not canceled.")


async def _stop(db: AsyncSession, gateway: Gateway, mailer: Any, actor: int, payout: Payout,
                reason: str) -> str | None:
    """Cancel a scheduled (locked) payout, or, when the processor turns out to have made its transfer, record it as
    paid and return the transfer's id. Either way it is audited."""
    if payout.attempts > 0:
        try:
            transfer = await gateway.find_transfer(payout.public_id)
        except TransferFailed as exc:
            raise Conflict("The payment processor could not say whether this payout was already sent; try again "
                           "shortly.") from exc
        if transfer is not None:
            await db.execute(text("UPDATE payouts SET state = 'processing' WHERE id = :id"), {"id": payout.id})
            await db.execute(text("UPDATE payouts SET state = 'paid', transfer_id = :t, paid_at = now(), "
                                  "last_error = '' WHERE id = :id"), {"id": payout.id, "t": transfer})
            await audit.record(db, actor, "payout.found_paid", f"payout:{payout.public_id}", reason,
                               transfer_id=transfer)
            return transfer
    await db.execute(text("UPDATE payouts SET state = 'canceled', canceled_at = now(), failure_reason = :why "
                          "WHERE id = :id"), {"id": payout.id, "why": "Canceled by Fairshelf: " + reason[:400]})
    await queue.return_money(await driver_connection(db), payout.id, "payout canceled")
    await queue.tell_creator(db, payout.id, mailer)
    await audit.record(db, actor, "payout.cancel", f"payout:{payout.public_id}", reason,
                       amount_cents=payout.amount_cents)
    return None


def username_of(typed: str) -> str:
    """A username as an admin may type it ("@Maker ") as it is stored ("maker")."""
    return typed.strip().lower().removeprefix("@")


async def creator_named(db: AsyncSession, username: str) -> Creator:
    name = username_of(username)
    creator = None
    if USERNAME.fullmatch(name):
        creator = (await db.scalars(select(Creator).join(User, User.id == Creator.user_id)
                                    .where(User.username == name).with_for_update())).first()
    if creator is None:
        raise FormInvalid({"username": "No creator has that username."})
    return creator


async def pause(db: AsyncSession, gateway: Gateway, mailer: Any, actor: int, username: str, reason: str,
                paused: bool) -> None:
    """Pause (or resume) a creator's payouts. Pausing also cancels a payout waiting to be sent, so nothing goes out
    while the reason stands; its money waits in the balance."""
    creator = await creator_named(db, username)
    creator.payouts_paused_reason = reason[:500] if paused else ""
    await audit.record(db, actor, "payouts.pause" if paused else "payouts.resume",
                       f"creator:{username_of(username)}", reason)
    if paused:
        waiting = (await db.scalars(select(Payout).where(Payout.creator_id == creator.user_id,
                                                         Payout.state == "scheduled").with_for_update())).first()
        if waiting is not None:
            await _stop(db, gateway, mailer, actor, waiting, f"Payouts paused: {reason}")


async def adjust(db: AsyncSession, actor: int, form: dict[str, str]) -> bool:
    reason = audit.reason_of(form)
    amount = ledger.parse_adjustment(form)
    nonce = form.get("nonce", "")
    if not (16 <= len(nonce) <= 64 and nonce.isalnum()):
        raise FormInvalid({"amount": "The form expired: load the page again."})
    creator = await creator_named(db, form.get("username", ""))
    written = await ledger.adjust(db, creator.user_id, creator.currency, amount, actor, reason, nonce)
    if written:
        await audit.record(db, actor, "ledger.adjust", f"creator:{username_of(form.get('username', ''))}",
                           reason, amount_cents=amount)
    return written


async def pay_now(db: AsyncSession, settings: Settings, actor: int, reason: str, now: datetime) -> int:
    made = await queue.create_payouts(db, settings, now)
    await audit.record(db, actor, "payouts.run", "payout-queue", reason, payouts_created=made)
    return made
