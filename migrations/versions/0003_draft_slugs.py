"""Untitled drafts have no slug yet: only non-empty slugs must be unique per creator.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("uq_items_creator_slug", table_name="items")
    op.create_index("uq_items_creator_slug", "items", ["creator_id", "slug"], unique=True,
                    postgresql_where=sa.text("deleted_at IS NULL AND slug <> ''"))


def downgrade() -> None:
    op.drop_index("uq_items_creator_slug", table_name="items")
    op.create_index("uq_items_creator_slug", "items", ["creator_id", "slug"], unique=True,
                    postgresql_where=sa.text("deleted_at IS NULL"))
