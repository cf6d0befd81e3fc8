"""Getting paid: payout accounts, the ledger, the payout queue, the audit log, and daily item counters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
LEDGER_KINDS = "('sale', 'refund', 'dispute', 'dispute_won', 'payout', 'payout_reversal', 'adjustment')"
PAYOUT_STATES = "('scheduled', 'processing', 'paid', 'failed', 'canceled')"

# Rows of the ledger and the audit log are facts: correcting one is a new entry, never an edit.
APPEND_ONLY = """
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$;
"""

# A payout may never take more than the creator's available balance at the moment it is made (the payout entry's
# own available_at), every earlier payout counted whatever its date (so a clock that moves back cannot free money
# already paid out). Entries for one creator are serialised by an advisory lock, so two concurrent payouts cannot
# both see the same money.
PAYOUT_COVERED = """
CREATE FUNCTION ledger_payout_covered() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    available bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ledger', NEW.creator_id));
    IF NEW.kind = 'payout' THEN
        SELECT COALESCE(sum(amount_cents), 0) INTO available FROM ledger_entries
        WHERE creator_id = NEW.creator_id AND currency = NEW.currency
          AND (available_at <= NEW.available_at OR kind = 'payout');
        IF available < 0 THEN
            RAISE EXCEPTION 'payout of % % exceeds the available balance of creator %', -NEW.amount_cents,
                NEW.currency, NEW.creator_id USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""

# The payout state machine, held by the database whatever code runs:
#   scheduled → processing → paid | scheduled (a retryable failure) | failed;  scheduled → canceled | failed.
# paid, failed and canceled are final.
PAYOUT_TRANSITIONS = """
CREATE FUNCTION payout_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = OLD.state THEN
        IF OLD.state IN ('paid', 'failed', 'canceled') AND (NEW.amount_cents <> OLD.amount_cents
                OR NEW.transfer_id IS DISTINCT FROM OLD.transfer_id) THEN
            RAISE EXCEPTION 'payout % is % and cannot change', OLD.id, OLD.state USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF (OLD.state, NEW.state) IN (('scheduled', 'processing'), ('scheduled', 'canceled'), ('scheduled', 'failed'),
                                  ('processing', 'paid'), ('processing', 'scheduled'), ('processing', 'failed')) THEN
        NEW.updated_at := now();
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'payout % cannot go from % to %', OLD.id, OLD.state, NEW.state USING ERRCODE = 'check_violation';
END $$;
"""


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True)


def _creator(table: str, ondelete: str | None = None) -> sa.Column:
    return sa.Column("creator_id", sa.BigInteger(), sa.ForeignKey(
        "creators.user_id", name=f"fk_{table}_creator_id_creators", ondelete=ondelete), nullable=False)


def upgrade() -> None:
    op.add_column("creators", sa.Column("payouts_paused_reason", sa.Text(), server_default="", nullable=False))
    # Finding paid orders whose sale was not credited yet (the hourly sweep looks at recent payments only).
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"], postgresql_where=sa.text("paid_at IS NOT NULL"))
    # The webhook backlog for /metrics: events stored and not processed yet (or failed), oldest first.
    op.create_index("ix_payment_events_backlog", "payment_events", ["received_at"],
                    postgresql_where=sa.text("state IN ('received', 'failed')"))

    op.create_table(
        "payout_accounts",
        sa.Column("creator_id", sa.BigInteger(), sa.ForeignKey(
            "creators.user_id", name="fk_payout_accounts_creator_id_creators", ondelete="CASCADE"), primary_key=True),
        sa.Column("stripe_account_id", sa.String(255), nullable=False, unique=True),
        sa.Column("charges_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("details_submitted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("currently_due", JSONB(), server_default="[]", nullable=False),
        sa.Column("disabled_reason", sa.String(100), server_default="", nullable=False),
        sa.Column("processor_updated_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
    )

    op.create_table(
        "payouts",
        _id(),
        sa.Column("public_id", sa.String(16), nullable=False, unique=True),
        _creator("payouts"),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(12), server_default="scheduled", nullable=False),
        sa.Column("destination", sa.String(255), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("locked_by", sa.String(120), nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("failure_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("transfer_id", sa.String(255), nullable=True, unique=True),
        sa.Column("amount_reversed_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("first_attempt_at", TS, nullable=True),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("failed_at", TS, nullable=True),
        sa.Column("canceled_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"state IN {PAYOUT_STATES}", name="ck_payouts_state"),
        sa.CheckConstraint("amount_cents > 0 AND amount_reversed_cents BETWEEN 0 AND amount_cents",
                           name="ck_payouts_amounts"),
        sa.CheckConstraint("state <> 'paid' OR (transfer_id IS NOT NULL AND paid_at IS NOT NULL)",
                           name="ck_payouts_paid"),
    )
    # At most one open payout per creator: the scheduler can run twice, or on two workers, and never pay twice.
    op.create_index("uq_payouts_open", "payouts", ["creator_id"], unique=True,
                    postgresql_where=sa.text("state IN ('scheduled', 'processing')"))
    op.create_index("ix_payouts_due", "payouts", ["next_attempt_at"],
                    postgresql_where=sa.text("state IN ('scheduled', 'processing')"))
    op.create_index("ix_payouts_creator", "payouts", ["creator_id", sa.text("id DESC")])
    op.create_index("ix_payouts_failed", "payouts", [sa.text("id DESC")], postgresql_where=sa.text("state = 'failed'"))
    op.execute(PAYOUT_TRANSITIONS)
    op.execute("CREATE TRIGGER payout_transition BEFORE UPDATE ON payouts FOR EACH ROW "
               "EXECUTE FUNCTION payout_transition()")

    op.create_table(
        "ledger_entries",
        _id(),
        _creator("ledger_entries"),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("available_at", TS, nullable=False),
        # What caused the entry: exactly the reference its kind needs (checked below).
        sa.Column("order_id", sa.BigInteger(), sa.ForeignKey("orders.id", name="fk_ledger_entries_order_id_orders"),
                  nullable=True),
        sa.Column("reversal_id", sa.BigInteger(), sa.ForeignKey(
            "order_reversals.id", name="fk_ledger_entries_reversal_id_order_reversals"), nullable=True),
        sa.Column("payout_id", sa.BigInteger(), sa.ForeignKey("payouts.id", name="fk_ledger_entries_payout_id_payouts"),
                  nullable=True),
        sa.Column("actor_id", sa.BigInteger(), sa.ForeignKey("users.id", name="fk_ledger_entries_actor_id_users"),
                  nullable=True),
        # One entry per fact, whoever writes it and however often: sale:<order>, refund:<reversal>, payout:<payout> …
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("gross_cents", sa.BigInteger(), nullable=True),  # a sale's amount before the processor's fee
        sa.Column("memo", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"kind IN {LEDGER_KINDS}", name="ck_ledger_entries_kind"),
        sa.CheckConstraint(
            "(kind IN ('sale', 'dispute_won', 'payout_reversal') AND amount_cents > 0)"
            " OR (kind IN ('refund', 'dispute', 'payout') AND amount_cents < 0)"
            " OR (kind = 'adjustment' AND amount_cents <> 0)", name="ck_ledger_entries_sign"),
        sa.CheckConstraint(
            "(kind = 'sale' AND order_id IS NOT NULL AND gross_cents >= amount_cents)"
            " OR (kind IN ('refund', 'dispute', 'dispute_won') AND order_id IS NOT NULL AND reversal_id IS NOT NULL)"
            " OR (kind IN ('payout', 'payout_reversal') AND payout_id IS NOT NULL)"
            " OR (kind = 'adjustment' AND actor_id IS NOT NULL AND memo <> '')", name="ck_ledger_entries_cause"),
    )
    op.create_index("ix_ledger_entries_creator", "ledger_entries", ["creator_id", "currency", "available_at"],
                    postgresql_include=["amount_cents"])
    op.create_index("ix_ledger_entries_creator_recent", "ledger_entries", ["creator_id", sa.text("id DESC")])
    op.create_index("ix_ledger_entries_creator_created", "ledger_entries", ["creator_id", "currency", "created_at"],
                    postgresql_include=["kind", "amount_cents"])
    op.execute(APPEND_ONLY)
    op.execute("CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries FOR EACH ROW "
               "EXECUTE FUNCTION append_only()")
    op.execute(PAYOUT_COVERED)
    op.execute("CREATE TRIGGER ledger_payout_covered AFTER INSERT ON ledger_entries FOR EACH ROW "
               "EXECUTE FUNCTION ledger_payout_covered()")

    op.create_table(
        "payout_runs",
        sa.Column("slot_start", TS, primary_key=True),
        sa.Column("payouts_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
    )

    op.create_table(
        "audit_log",
        _id(),
        sa.Column("actor_id", sa.BigInteger(), sa.ForeignKey("users.id", name="fk_audit_log_actor_id_users"),
                  nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSONB(), server_default="{}", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("reason <> ''", name="ck_audit_log_reason"),
    )
    op.create_index("ix_audit_log_recent", "audit_log", [sa.text("id DESC")])
    op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW "
               "EXECUTE FUNCTION append_only()")

    op.create_table(
        "item_stats_daily",
        sa.Column("item_id", sa.BigInteger(), sa.ForeignKey(
            "items.id", name="fk_item_stats_daily_item_id_items", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        _creator("item_stats_daily", ondelete="CASCADE"),
        sa.Column("views", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plays", sa.Integer(), server_default="0", nullable=False),
        sa.Column("downloads", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index("ix_item_stats_daily_creator", "item_stats_daily", ["creator_id", "day"])

    # Development and tests only: how far the payout clock runs ahead of the real one (production ignores it).
    op.create_table(
        "dev_clock",
        sa.Column("id", sa.Boolean(), server_default="true", primary_key=True),
        sa.Column("offset_seconds", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id", name="ck_dev_clock_single_row"),
    )


def downgrade() -> None:
    for table in ("dev_clock", "item_stats_daily", "audit_log", "payout_runs", "ledger_entries", "payouts",
                  "payout_accounts"):
        op.drop_table(table)
    op.execute("DROP FUNCTION ledger_payout_covered()")
    op.execute("DROP FUNCTION append_only()")
    op.execute("DROP FUNCTION payout_transition()")
    op.drop_index("ix_payment_events_backlog", "payment_events")
    op.drop_index("ix_orders_paid_at", "orders")
    op.drop_column("creators", "payouts_paused_reason")
