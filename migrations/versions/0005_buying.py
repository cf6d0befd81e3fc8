"""Buying: orders, entitlements, the processor's events, reversals, and tier billing on creators.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import CITEXT, JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ORDER_STATES = "('pending', 'paid', 'failed', 'expired', 'refunded', 'disputed', 'dispute_lost')"


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True)


def upgrade() -> None:
    op.add_column("creators", sa.Column("billing_customer_id", sa.String(255), nullable=True))
    op.add_column("creators", sa.Column("subscription_id", sa.String(255), nullable=True))
    op.add_column("creators", sa.Column("past_due_since", TS, nullable=True))
    op.add_column("creators", sa.Column("billing_updated_at", TS, nullable=True))
    op.create_unique_constraint("uq_creators_subscription_id", "creators", ["subscription_id"])

    op.create_table(
        "orders",
        _id(),
        sa.Column("public_id", sa.String(16), nullable=False),
        sa.Column("item_id", sa.BigInteger(), sa.ForeignKey("items.id", name="fk_orders_item_id_items"),
                  nullable=False),
        sa.Column("creator_id", sa.BigInteger(),
                  sa.ForeignKey("creators.user_id", name="fk_orders_creator_id_creators"), nullable=False),
        sa.Column("buyer_id", sa.BigInteger(),
                  sa.ForeignKey("users.id", name="fk_orders_buyer_id_users", ondelete="SET NULL"), nullable=True),
        sa.Column("buyer_email", CITEXT(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(12), server_default="pending", nullable=False),
        sa.Column("livemode", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("checkout_session_id", sa.String(255), nullable=True),
        sa.Column("payment_intent_id", sa.String(255), nullable=True),
        sa.Column("charge_id", sa.String(255), nullable=True),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("failed_at", TS, nullable=True),
        sa.Column("expired_at", TS, nullable=True),
        sa.Column("amount_refunded_cents", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refund_requested_at", TS, nullable=True),
        sa.Column("dispute_id", sa.String(255), nullable=True),
        sa.Column("dispute_status", sa.String(10), nullable=True),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"state IN {ORDER_STATES}", name="ck_orders_state"),
        sa.CheckConstraint("amount_cents > 0 AND amount_refunded_cents >= 0", name="ck_orders_amounts"),
        sa.CheckConstraint("dispute_status IS NULL OR dispute_status IN ('open', 'won', 'lost')",
                           name="ck_orders_dispute"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("public_id", name="uq_orders_public_id"),
        sa.UniqueConstraint("checkout_session_id", name="uq_orders_checkout_session_id"),
        sa.UniqueConstraint("payment_intent_id", name="uq_orders_payment_intent_id"),
    )
    op.create_index("ix_orders_creator", "orders", ["creator_id", sa.text("id DESC")])
    op.create_index("ix_orders_buyer", "orders", ["buyer_id", sa.text("id DESC")])
    op.create_index("ix_orders_email_unclaimed", "orders", ["buyer_email"], postgresql_where=sa.text("buyer_id IS NULL"))
    op.create_index("ix_orders_item_paid", "orders", ["item_id", "paid_at"], postgresql_where=sa.text("state = 'paid'"))

    op.create_table(
        "entitlements",
        _id(),
        sa.Column("item_id", sa.BigInteger(), sa.ForeignKey("items.id", name="fk_entitlements_item_id_items"),
                  nullable=False),
        sa.Column("user_id", sa.BigInteger(),
                  sa.ForeignKey("users.id", name="fk_entitlements_user_id_users", ondelete="CASCADE"), nullable=True),
        sa.Column("email", CITEXT(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), sa.ForeignKey("orders.id", name="fk_entitlements_order_id_orders"),
                  nullable=True),
        sa.Column("granted_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_downloaded_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_entitlements"),
    )
    op.create_index("uq_entitlements_order", "entitlements", ["order_id"], unique=True,
                    postgresql_where=sa.text("order_id IS NOT NULL"))
    op.create_index("uq_entitlements_claim", "entitlements", ["user_id", "item_id"], unique=True,
                    postgresql_where=sa.text("order_id IS NULL"))
    op.create_index("ix_entitlements_user", "entitlements", ["user_id", sa.text("granted_at DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index("ix_entitlements_item_user", "entitlements", ["item_id", "user_id"],
                    postgresql_where=sa.text("revoked_at IS NULL"))

    op.create_table(
        "payment_events",
        _id(),
        sa.Column("stripe_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("api_version", sa.String(40), server_default="", nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("received_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("state", sa.String(10), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.CheckConstraint("state IN ('received', 'processed', 'ignored', 'failed')", name="ck_payment_events_state"),
        sa.PrimaryKeyConstraint("id", name="pk_payment_events"),
        sa.UniqueConstraint("stripe_id", name="uq_payment_events_stripe_id"),
    )
    op.create_index("ix_payment_events_recent", "payment_events", [sa.text("id DESC")])

    op.create_table(
        "order_reversals",
        _id(),
        sa.Column("order_id", sa.BigInteger(), sa.ForeignKey("orders.id", name="fk_order_reversals_order_id_orders"),
                  nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("processor_ref", sa.String(255), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('refund', 'dispute', 'dispute_won')", name="ck_order_reversals_kind"),
        sa.CheckConstraint("amount_cents > 0", name="ck_order_reversals_amount"),
        sa.PrimaryKeyConstraint("id", name="pk_order_reversals"),
    )
    op.create_index("ix_order_reversals_order_id", "order_reversals", ["order_id"])
    op.create_index("uq_order_reversals_fact", "order_reversals", ["kind", "processor_ref"], unique=True)


def downgrade() -> None:
    op.drop_table("order_reversals")
    op.drop_table("payment_events")
    op.drop_table("entitlements")
    op.drop_table("orders")
    op.drop_constraint("uq_creators_subscription_id", "creators", type_="unique")
    for column in ("billing_updated_at", "past_due_since", "subscription_id", "billing_customer_id"):
        op.drop_column("creators", column)
