"""Tables owned by checkout: orders, the access they grant, the processor's events, and money reversed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin

ORDER_STATES = ("pending", "paid", "failed", "expired", "refunded", "disputed", "dispute_lost")
EVENT_STATES = ("received", "processed", "ignored", "failed")
REVERSAL_KINDS = ("refund", "dispute", "dispute_won")


class Order(IdMixin, TimestampMixin, Base):
    """One purchase of one item. The state is derived from the facts the processor reported (paid_at,
    amount refunded, dispute status …), so events applied in any order end in the same state."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"state IN {ORDER_STATES}", name="state"),
        CheckConstraint("amount_cents > 0 AND amount_refunded_cents >= 0", name="amounts"),
        CheckConstraint("dispute_status IS NULL OR dispute_status IN ('open', 'won', 'lost')", name="dispute"),
        Index("ix_orders_creator", "creator_id", text("id DESC")),
        Index("ix_orders_buyer", "buyer_id", text("id DESC")),
        Index("ix_orders_email_unclaimed", "buyer_email", postgresql_where=text("buyer_id IS NULL")),
        Index("ix_orders_item_paid", "item_id", "paid_at", postgresql_where=text("state = 'paid'")),
        Index("ix_orders_paid_at", "paid_at", postgresql_where=text("paid_at IS NOT NULL")),
    )

    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id"))
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id"))
    buyer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"))
    buyer_email: Mapped[str] = mapped_column(CITEXT)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(12), server_default="pending")
    livemode: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # A purchase can never be recorded twice: one order per Checkout Session.
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    charge_id: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    amount_refunded_cents: Mapped[int] = mapped_column(Integer, server_default="0")
    refund_requested_at: Mapped[datetime | None]
    dispute_id: Mapped[str | None] = mapped_column(String(255))
    dispute_status: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Entitlement(IdMixin, Base):
    """Access to an item: from a paid order (revoked by a refund or a lost dispute) or a free claim. Buyers keep it
    whatever the creator later does to the item. Bought without an account, it waits (user_id empty) until
    someone proves they own the email."""

    __tablename__ = "entitlements"
    __table_args__ = (
        Index("uq_entitlements_order", "order_id", unique=True, postgresql_where=text("order_id IS NOT NULL")),
        Index("uq_entitlements_claim", "user_id", "item_id", unique=True, postgresql_where=text("order_id IS NULL")),
        Index("ix_entitlements_user", "user_id", text("granted_at DESC"), text("id DESC"),
              postgresql_where=text("revoked_at IS NULL")),
        Index("ix_entitlements_item_user", "item_id", "user_id", postgresql_where=text("revoked_at IS NULL")),
    )

    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id"))
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(CITEXT)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"))
    granted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]
    last_downloaded_at: Mapped[datetime | None]


class PaymentEvent(IdMixin, Base):
    """A webhook delivery from the processor, stored before it is acknowledged and processed by the worker."""

    __tablename__ = "payment_events"
    __table_args__ = (
        CheckConstraint(f"state IN {EVENT_STATES}", name="state"),
        Index("ix_payment_events_recent", text("id DESC")),
        Index("ix_payment_events_backlog", "received_at", postgresql_where=text("state IN ('received', 'failed')")),
    )

    stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean)
    api_version: Mapped[str] = mapped_column(String(40), server_default="")
    # When the processor created the event (its own clock), and when it reached us.
    created: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(10), server_default="received")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str] = mapped_column(Text, server_default="")
    processed_at: Mapped[datetime | None]


class OrderReversal(IdMixin, TimestampMixin, Base):
    """Money that went back to a buyer (refund, dispute) or came back (dispute won), once per processor fact, so
    the creator's ledger can debit or credit it."""

    __tablename__ = "order_reversals"
    __table_args__ = (
        CheckConstraint(f"kind IN {REVERSAL_KINDS}", name="kind"),
        CheckConstraint("amount_cents > 0", name="amount"),
        Index("uq_order_reversals_fact", "kind", "processor_ref", unique=True),
    )

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    processor_ref: Mapped[str] = mapped_column(String(255))
