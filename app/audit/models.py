"""The audit log: every admin action, who took it and why."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class AuditEntry(IdMixin, TimestampMixin, Base):
    """An admin's action: who, what, on what, and why. Append-only (a trigger refuses updates and deletes)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("reason <> ''", name="reason"),
        Index("ix_audit_log_recent", text("id DESC")),
    )

    actor_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
