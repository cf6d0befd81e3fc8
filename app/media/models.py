"""Uploaded files: one row per file, from the moment its bytes arrive until it is ready (or refused)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin

UPLOAD_STATES = ("received", "processing", "ready", "rejected", "failed")
PURPOSES = ("file", "cover", "avatar", "preview")


class Upload(IdMixin, TimestampMixin, Base):
    """A creator's file. States: received -> processing -> ready | rejected (reason shown) | failed (retried,
    reason kept). Its size counts against the creator's storage from arrival until it is rejected or deleted."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(f"state IN {UPLOAD_STATES}", name="state"),
        CheckConstraint(f"purpose IN {PURPOSES}", name="purpose"),
        Index("ix_uploads_item", "item_id", "version_id"),
        Index("ix_uploads_creator", "creator_id", "id"),
        Index("ix_uploads_unfinished", "updated_at", postgresql_where=text("state IN ('received', 'processing')")),
    )

    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    creator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("creators.user_id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    version_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("item_versions.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(10))
    # The client's file name, cleaned for display and Content-Disposition; never used as a path.
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), server_default="received")
    reason: Mapped[str | None] = mapped_column(Text)
    temp_path: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(Text)
    mime: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    # Sizes (longest side, px) of the WebP thumbnails stored beside a cover.
    thumbnails: Mapped[list] = mapped_column(JSONB, server_default="[]")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    deleted_at: Mapped[datetime | None]
