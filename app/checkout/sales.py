"""A creator's sales: the list, and refunding one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Item
from app.checkout.gateway import RefundRequest
from app.checkout.models import ORDER_STATES, Order
from app.web import pagination
from app.web.errors import Conflict, NotFound

SALE_STATES = tuple(s for s in ORDER_STATES if s not in ("pending", "failed", "expired"))


@dataclass(frozen=True, slots=True)
class SalesPage:
    rows: list[Any]
    next_cursor: str | None


async def sales(db: AsyncSession, creator_id: int, state: str = "", cursor: str | None = None,
                size: int = 50) -> SalesPage:
    after = pagination.decode(cursor, (int,))
    query = (
        select(Order.id, Order.public_id, Order.state, Order.amount_cents, Order.amount_refunded_cents, Order.currency,
               Order.buyer_email, Order.paid_at, Order.refund_requested_at, Order.dispute_status,
               Item.public_id.label("item_id"), Item.title)
        .join(Item, Item.id == Order.item_id)
        .where(Order.creator_id == creator_id, Order.state.in_((state,) if state in SALE_STATES else SALE_STATES))
        .order_by(Order.id.desc()).limit(size + 1)
    )
    if after is not None:
        query = query.where(Order.id < after[0])
    rows = list(await db.execute(query))
    more = len(rows) > size
    rows = rows[:size]
    return SalesPage(rows, pagination.encode((rows[-1].id,)) if more and rows else None)


async def refund_request(db: AsyncSession, creator_id: int, order_public_id: str) -> RefundRequest:
    """What to ask the processor to refund a paid sale of this creator. Access ends when the processor confirms
    the refund (its event), whoever started it; asking twice is safe (the same idempotency key)."""
    order = await db.scalar(select(Order).where(Order.public_id == order_public_id, Order.creator_id == creator_id))
    if order is None:
        raise NotFound("There is no such sale among yours.")
    if order.state != "paid" or order.amount_refunded_cents >= order.amount_cents:
        raise Conflict("Only a paid sale that is not refunded or disputed can be refunded.")
    if not order.payment_intent_id:
        raise Conflict("This sale's payment is not confirmed yet; try again in a minute.")
    return RefundRequest(order_id=order.public_id, payment_intent_id=order.payment_intent_id,
                         amount_cents=order.amount_cents, currency=order.currency, charge_id=order.charge_id)


async def note_refund_sent(db: AsyncSession, order_public_id: str) -> None:
    """The processor accepted the refund: the sales list shows it as sent until its event arrives."""
    await db.execute(update(Order).where(Order.public_id == order_public_id, Order.refund_requested_at.is_(None))
                     .values(refund_requested_at=datetime.now(UTC)))
