"""Writing and reading the audit log. Entries are written in the same transaction as the action they record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.web.errors import FormInvalid
from app.web.forms import clean_text

MAX_REASON = 2000


def reason_of(form: dict[str, str], field: str = "reason") -> str:
    """The reason an admin gave for an action; every audited action needs one."""
    reason = clean_text(form.get(field, ""))
    if not reason:
        raise FormInvalid({field: "Say why: the reason goes into the audit log."})
    if len(reason) > MAX_REASON:
        raise FormInvalid({field: f"Keep the reason under {MAX_REASON} characters."})
    return reason


async def record(db: AsyncSession, actor_id: int, action: str, target: str, reason: str,
                 **details: Any) -> None:
    db.add(AuditEntry(actor_id=actor_id, action=action, target=target, reason=reason, details=details))
    await db.flush()


async def recent(db: AsyncSession, limit: int = 50) -> list[AuditEntry]:
    return list(await db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
