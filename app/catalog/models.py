"""Tables owned by the catalog: creators, projects, items and item versions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    cast,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, UserDefinedType

from app.db.base import Base, IdMixin, TimestampMixin

ITEM_TYPES = ("audio", "video", "text", "image", "file")
VERSIONED_TYPES = ("audio", "video", "image", "file")
STATUSES = ("draft", "published", "unlisted", "archived")
PRICE_MODES = ("free", "fixed", "pwyw")
AI_LABELS = ("handmade", "assisted", "generated")
LISTED = "status = 'published' AND deleted_at IS NULL"  # what public lists, feeds and search show


class LTree(UserDefinedType):
    """PostgreSQL's ltree: a label path such as music.electronic.ambient."""

    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "ltree"


class LTreeArray(TypeDecorator):
    """ltree[] in the database, list[str] in Python: the driver does not know ltree, so values cross as text[]."""

    impl = ARRAY(Text)
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return cast(column, ARRAY(Text))

    def bind_expression(self, value: Any) -> Any:
        return cast(value, ARRAY(LTree()))


class Creator(TimestampMixin, Base):
    """A user who sells. Storage use is counted here, atomically, against the tier's quota."""

    __tablename__ = "creators"
    __table_args__ = (CheckConstraint("storage_used_bytes >= 0", name="storage_used_non_negative"),)

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # The tier the creator chose; until it is paid for (tier billing), the configured default tier applies.
    tier: Mapped[str] = mapped_column(String(20))
    tier_status: Mapped[str] = mapped_column(String(20), server_default="unpaid")
    bio: Mapped[str] = mapped_column(Text, server_default="")
    links: Mapped[list] = mapped_column(JSONB, server_default="[]")
    avatar_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("uploads.id", ondelete="SET NULL", use_alter=True)
    )
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    storage_used_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Tier billing (a subscription on the platform's processor account): active, past_due (uploads still work
    # until the grace period ends), canceled or unpaid.
    billing_customer_id: Mapped[str | None] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    past_due_since: Mapped[datetime | None]
    # The processor's time of the last billing event applied, so an older event arriving late changes nothing.
    billing_updated_at: Mapped[datetime | None]
    # Set by an admin (or a suspension): the scheduler skips this creator's payouts and shows them the reason.
    payouts_paused_reason: Mapped[str] = mapped_column(Text, server_default="")


class Project(IdMixin, TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (Index("uq_projects_creator_slug", "creator_id", "slug", unique=True),)

    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80))
    description_md: Mapped[str] = mapped_column(Text, server_default="")
    description_html: Mapped[str] = mapped_column(Text, server_default="")
    cover_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("uploads.id", ondelete="SET NULL", use_alter=True)
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Item(IdMixin, TimestampMixin, Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint(f"type IN {ITEM_TYPES}", name="type"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint(f"price_mode IN {PRICE_MODES}", name="price_mode"),
        CheckConstraint(f"ai_label IS NULL OR ai_label IN {AI_LABELS}", name="ai_label"),
        CheckConstraint("price_cents >= 0 AND min_price_cents >= 0 AND suggested_price_cents >= 0", name="prices"),
        CheckConstraint("price_mode <> 'pwyw' OR suggested_price_cents >= min_price_cents", name="pwyw_range"),
        Index("uq_items_creator_slug", "creator_id", "slug", unique=True,
              postgresql_where=text("deleted_at IS NULL AND slug <> ''")),
        Index("ix_items_creator", "creator_id", "updated_at"),
        Index("ix_items_tags", "tags", postgresql_using="gist"),
        Index("ix_items_search", "search_vector", postgresql_using="gin"),
        # Type-ahead: titles by prefix. The migration builds it COLLATE "C" (byte order, so LIKE 'abc%' is an index
        # range under any database collation); Alembic does not reflect an expression's collation.
        Index("ix_items_title_prefix", text("lower(title::text)"), postgresql_where=text(LISTED)),
        # Every public list walks one of these in order and stops after a page (keyset pagination).
        Index("ix_items_listed_new", text("published_at DESC"), text("id DESC"), postgresql_where=text(LISTED)),
        Index("ix_items_listed_popular", text("recent_sales DESC"), text("id DESC"), postgresql_where=text(LISTED)),
        Index("ix_items_listed_sales", text("sales_count DESC"), text("id DESC"), postgresql_where=text(LISTED)),
        Index("ix_items_listed_price", "price_cents", "id", postgresql_where=text(LISTED)),
        Index("ix_items_listed_creator", "creator_id", text("published_at DESC"), text("id DESC"),
              postgresql_where=text(LISTED)),
        Index("ix_items_listed_project", "project_id", text("published_at DESC"), text("id DESC"),
              postgresql_where=text(LISTED)),
    )

    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(String(10))
    subtype: Mapped[str] = mapped_column(String(40), server_default="")
    title: Mapped[str] = mapped_column(String(200), server_default="")
    slug: Mapped[str] = mapped_column(String(80), server_default="")
    description_md: Mapped[str] = mapped_column(Text, server_default="")
    description_html: Mapped[str] = mapped_column(Text, server_default="")
    body_md: Mapped[str] = mapped_column(Text, server_default="")
    body_html: Mapped[str] = mapped_column(Text, server_default="")
    chapters: Mapped[list] = mapped_column(JSONB, server_default="[]")
    cover_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("uploads.id", ondelete="SET NULL", use_alter=True)
    )
    price_mode: Mapped[str] = mapped_column(String(10), server_default="free")
    price_cents: Mapped[int] = mapped_column(Integer, server_default="0")
    min_price_cents: Mapped[int] = mapped_column(Integer, server_default="0")
    suggested_price_cents: Mapped[int] = mapped_column(Integer, server_default="0")
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    tags: Mapped[list[str]] = mapped_column(LTreeArray, server_default="{}")
    release_date: Mapped[date | None] = mapped_column(Date)
    credits: Mapped[str] = mapped_column(Text, server_default="")
    ai_label: Mapped[str | None] = mapped_column(String(10))
    preview_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("uploads.id", ondelete="SET NULL", use_alter=True)
    )
    status: Mapped[str] = mapped_column(String(10), server_default="draft")
    # Kept by the database (trigger item_search_document, migration 0004): title A, creator and tags B, text C.
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)
    # Sales counters that the buying flow keeps: all time, and the recent window that "popular" ranks by.
    sales_count: Mapped[int] = mapped_column(Integer, server_default="0")
    recent_sales: Mapped[int] = mapped_column(Integer, server_default="0")
    wizard_step: Mapped[str] = mapped_column(String(10), server_default="details")
    published_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ItemVersion(IdMixin, TimestampMixin, Base):
    """A release of a file-like item; buyers keep every published version."""

    __tablename__ = "item_versions"
    __table_args__ = (Index("uq_item_versions_label", "item_id", "label", unique=True),)

    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(40))
    changelog: Mapped[str] = mapped_column(Text, server_default="")
    published_at: Mapped[datetime | None]
