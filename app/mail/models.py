"""The outbox of email messages: written in the transaction that causes them, sent by the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class Email(IdMixin, TimestampMixin, Base):
    __tablename__ = "emails"
    __table_args__ = (CheckConstraint("state IN ('queued', 'sent', 'failed')", name="state"),)

    to_address: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    # Which message this is (e.g. "password_reset"), so tests and support can find it without parsing bodies.
    template: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(10), server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
