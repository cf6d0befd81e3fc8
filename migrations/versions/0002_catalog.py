"""Catalog: creators, projects, items, item versions and uploads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType


class LTree(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "ltree"


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ltree stores hierarchical tags, so "everything under music" is one indexed query (a GiST index).
    op.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    op.create_table('creators',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('tier', sa.String(length=20), nullable=False),
    sa.Column('tier_status', sa.String(length=20), server_default='unpaid', nullable=False),
    sa.Column('bio', sa.Text(), server_default='', nullable=False),
    sa.Column('links', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('avatar_upload_id', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.Column('storage_used_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('storage_used_bytes >= 0', name=op.f('ck_creators_storage_used_non_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_creators_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_creators'))
    )
    op.create_table('projects',
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('creator_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('description_md', sa.Text(), server_default='', nullable=False),
    sa.Column('description_html', sa.Text(), server_default='', nullable=False),
    sa.Column('cover_upload_id', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.user_id'], name=op.f('fk_projects_creator_id_creators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('public_id', name=op.f('uq_projects_public_id'))
    )
    op.create_index('uq_projects_creator_slug', 'projects', ['creator_id', 'slug'], unique=True)
    op.create_table('items',
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('creator_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=True),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('subtype', sa.String(length=40), server_default='', nullable=False),
    sa.Column('title', sa.String(length=200), server_default='', nullable=False),
    sa.Column('slug', sa.String(length=80), server_default='', nullable=False),
    sa.Column('description_md', sa.Text(), server_default='', nullable=False),
    sa.Column('description_html', sa.Text(), server_default='', nullable=False),
    sa.Column('body_md', sa.Text(), server_default='', nullable=False),
    sa.Column('body_html', sa.Text(), server_default='', nullable=False),
    sa.Column('chapters', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('cover_upload_id', sa.BigInteger(), nullable=True),
    sa.Column('price_mode', sa.String(length=10), server_default='free', nullable=False),
    sa.Column('price_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('min_price_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('suggested_price_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.Column('tags', postgresql.ARRAY(LTree()), server_default='{}', nullable=False),
    sa.Column('release_date', sa.Date(), nullable=True),
    sa.Column('credits', sa.Text(), server_default='', nullable=False),
    sa.Column('ai_label', sa.String(length=10), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('wizard_step', sa.String(length=10), server_default='details', nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("ai_label IS NULL OR ai_label IN ('handmade', 'assisted', 'generated')", name=op.f('ck_items_ai_label')),
    sa.CheckConstraint("price_mode <> 'pwyw' OR suggested_price_cents >= min_price_cents", name=op.f('ck_items_pwyw_range')),
    sa.CheckConstraint("price_mode IN ('free', 'fixed', 'pwyw')", name=op.f('ck_items_price_mode')),
    sa.CheckConstraint("status IN ('draft', 'published', 'unlisted', 'archived')", name=op.f('ck_items_status')),
    sa.CheckConstraint("type IN ('audio', 'video', 'text', 'image', 'file')", name=op.f('ck_items_type')),
    sa.CheckConstraint('price_cents >= 0 AND min_price_cents >= 0 AND suggested_price_cents >= 0', name=op.f('ck_items_prices')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.user_id'], name=op.f('fk_items_creator_id_creators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_items_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('public_id', name=op.f('uq_items_public_id'))
    )
    op.create_index('ix_items_creator', 'items', ['creator_id', 'updated_at'], unique=False)
    op.create_index('ix_items_tags', 'items', ['tags'], unique=False, postgresql_using='gist')
    op.create_index('uq_items_creator_slug', 'items', ['creator_id', 'slug'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('item_versions',
    sa.Column('item_id', sa.BigInteger(), nullable=False),
    sa.Column('label', sa.String(length=40), nullable=False),
    sa.Column('changelog', sa.Text(), server_default='', nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_versions_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_versions'))
    )
    op.create_index('uq_item_versions_label', 'item_versions', ['item_id', 'label'], unique=True)
    op.create_table('uploads',
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('creator_id', sa.BigInteger(), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=True),
    sa.Column('version_id', sa.BigInteger(), nullable=True),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), server_default='received', nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('temp_path', sa.Text(), nullable=True),
    sa.Column('storage_key', sa.Text(), nullable=True),
    sa.Column('mime', sa.String(length=100), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('meta', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('thumbnails', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("purpose IN ('file', 'cover', 'avatar')", name=op.f('ck_uploads_purpose')),
    sa.CheckConstraint("state IN ('received', 'processing', 'ready', 'rejected', 'failed')", name=op.f('ck_uploads_state')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.user_id'], name=op.f('fk_uploads_creator_id_creators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_uploads_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['item_versions.id'], name=op.f('fk_uploads_version_id_item_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads')),
    sa.UniqueConstraint('public_id', name=op.f('uq_uploads_public_id'))
    )
    op.create_index('ix_uploads_item', 'uploads', ['item_id', 'version_id'], unique=False)
    op.create_index('ix_uploads_unfinished', 'uploads', ['updated_at'], unique=False, postgresql_where=sa.text("state IN ('received', 'processing')"))
    op.create_index('ix_uploads_creator', 'uploads', ['creator_id', 'id'])
    # Covers and avatars point back at uploads, which point at items: added once both tables exist.
    for table, column in (("creators", "avatar_upload_id"), ("projects", "cover_upload_id"), ("items", "cover_upload_id")):
        op.create_foreign_key(f"fk_{table}_{column}_uploads", table, "uploads", [column], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    for table, column in (("creators", "avatar_upload_id"), ("projects", "cover_upload_id"), ("items", "cover_upload_id")):
        op.drop_constraint(f"fk_{table}_{column}_uploads", table, type_="foreignkey")
    op.drop_index('ix_uploads_creator', table_name='uploads')
    op.drop_index('ix_uploads_unfinished', table_name='uploads', postgresql_where=sa.text("state IN ('received', 'processing')"))
    op.drop_index('ix_uploads_item', table_name='uploads')
    op.drop_table('uploads')
    op.drop_index('uq_item_versions_label', table_name='item_versions')
    op.drop_table('item_versions')
    op.drop_index('uq_items_creator_slug', table_name='items', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_items_tags', table_name='items', postgresql_using='gist')
    op.drop_index('ix_items_creator', table_name='items')
    op.drop_table('items')
    op.drop_index('uq_projects_creator_slug', table_name='projects')
    op.drop_table('projects')
    op.drop_table('creators')
