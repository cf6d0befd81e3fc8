"""Tables owned by payouts: creators' payout accounts, the ledger, the payout queue, and the runs of the scheduler.

The database holds the rules that money depends on (migration 0006): ledger rows are append-only, a payout entry
can never exceed the available balance, at most one payout per creator is open, and payouts move only along
scheduled → processing → paid | scheduled | failed, or scheduled → canceled | failed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin

LEDGER_KINDS = ("sale", "refund", "dispute", "dispute_won", "payout", "payout_reversal", "adjustment")
PAYOUT_STATES = ("scheduled", "processing", "paid", "failed", "canceled")
OPEN_STATES = ("scheduled", "processing")


class PayoutAccount(TimestampMixin, Base):
    """A creator's connected (Express) account at the processor, as its latest account.updated event described it."""

    __tablename__ = "payout_accounts"

    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id", ondelete="CASCADE"),
                                            primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    details_submitted: Mapped[bool] = mapped_column(Boolean, server_default="false")
    currently_due: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    disabled_reason: Mapped[str] = mapped_column(String(100), server_default="")
    processor_updated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Payout(IdMixin, TimestampMixin, Base):
    """One transfer of a creator's available balance to their payout account: the payout queue is this table."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint(f"state IN {PAYOUT_STATES}", name="state"),
        CheckConstraint("amount_cents > 0 AND amount_reversed_cents BETWEEN 0 AND amount_cents", name="amounts"),
        CheckConstraint("state <> 'paid' OR (transfer_id IS NOT NULL AND paid_at IS NOT NULL)", name="paid"),
        Index("uq_payouts_open", "creator_id", unique=True,
              postgresql_where=text("state IN ('scheduled', 'processing')")),
        Index("ix_payouts_due", "next_attempt_at", postgresql_where=text("state IN ('scheduled', 'processing')")),
        Index("ix_payouts_creator", "creator_id", text("id DESC")),
        Index("ix_payouts_failed", text("id DESC"), postgresql_where=text("state = 'failed'")),
    )

    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(12), server_default="scheduled")
    destination: Mapped[str] = mapped_column(String(255))  # the connected account it is sent to
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, server_default="")  # for the admin: what the processor said
    failure_reason: Mapped[str] = mapped_column(Text, server_default="")  # for the creator: what to do about it
    transfer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    amount_reversed_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    first_attempt_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(IdMixin, TimestampMixin, Base):
    """One movement of a creator's money, in integer cents (credits positive). The balance is their sum; an entry
    counts as available from `available_at` (a sale's hold period), and a payout always (see AVAILABLE)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN {LEDGER_KINDS}", name="kind"),
        CheckConstraint(
            "(kind IN ('sale', 'dispute_won', 'payout_reversal') AND amount_cents > 0)"
            " OR (kind IN ('refund', 'dispute', 'payout') AND amount_cents < 0)"
            " OR (kind = 'adjustment' AND amount_cents <> 0)", name="sign"),
        CheckConstraint(
            "(kind = 'sale' AND order_id IS NOT NULL AND gross_cents >= amount_cents)"
            " OR (kind IN ('refund', 'dispute', 'dispute_won') AND order_id IS NOT NULL AND reversal_id IS NOT NULL)"
            " OR (kind IN ('payout', 'payout_reversal') AND payout_id IS NOT NULL)"
            " OR (kind = 'adjustment' AND actor_id IS NOT NULL AND memo <> '')", name="cause"),
        Index("ix_ledger_entries_creator", "creator_id", "currency", "available_at",
              postgresql_include=["amount_cents"]),
        Index("ix_ledger_entries_creator_recent", "creator_id", text("id DESC")),
        Index("ix_ledger_entries_creator_created", "creator_id", "currency", "created_at",
              postgresql_include=["kind", "amount_cents"]),
    )

    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id"))
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[datetime]
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"))
    reversal_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("order_reversals.id"))
    payout_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("payouts.id"))
    actor_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    gross_cents: Mapped[int | None] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(Text, server_default="")


class PayoutRun(Base):
    """One run of the payout scheduler per schedule slot (a week by default), however many workers try."""

    __tablename__ = "payout_runs"

    slot_start: Mapped[datetime] = mapped_column(primary_key=True)
    payouts_created: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ItemStatsDaily(Base):
    """Views, plays and downloads of an item per day, written in batches from the web workers' buffers."""

    __tablename__ = "item_stats_daily"
    __table_args__ = (Index("ix_item_stats_daily_creator", "creator_id", "day"),)

    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id", ondelete="CASCADE"))
    views: Mapped[int] = mapped_column(Integer, server_default="0")
    plays: Mapped[int] = mapped_column(Integer, server_default="0")
    downloads: Mapped[int] = mapped_column(Integer, server_default="0")


class DevClock(Base):
    """How far the payout clock runs ahead in development and tests (production never reads it)."""

    __tablename__ = "dev_clock"
    __table_args__ = (CheckConstraint("id", name="single_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    offset_seconds: Mapped[int] = mapped_column(BigInteger, server_default="0")
