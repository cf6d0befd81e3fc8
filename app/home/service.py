"""What the home page shows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User


async def newest_creators(db: AsyncSession, limit: int = 12) -> list[User]:
    return list(await db.scalars(select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit)))
