"""Tables owned by accounts: users, their server-side sessions, and login throttling buckets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("username ~ '^[a-z0-9_]{3,30}$'", name="username_format"),
        # Type-ahead suggests creators whose name starts with what was typed (COLLATE "C" in the migration, which
        # Alembic does not reflect; see ix_items_title_prefix).
        Index("ix_users_display_name_prefix", text("lower(display_name::text)")),
    )

    email: Mapped[str] = mapped_column(CITEXT, unique=True)
    username: Mapped[str] = mapped_column(CITEXT, unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default="false")

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class UserSession(IdMixin, TimestampMixin, Base):
    """A signed-in browser. Only a SHA-256 of the cookie's random id is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    expires_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(300), server_default="")
    ip: Mapped[str] = mapped_column(String(64), server_default="")


class ThrottleBucket(Base):
    """Failed attempts for one key (an account identifier or a client IP) and when it may try again."""

    __tablename__ = "throttle_buckets"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    last_failure_at: Mapped[datetime] = mapped_column(server_default=func.now())
    blocked_until: Mapped[datetime | None]
