"""The payout clock: real time in production; in development and tests it can be moved ahead, so a hold period
or a payout date can pass without waiting a week (the development processor's page has the buttons)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings


async def now(db: AsyncSession, settings: Settings) -> datetime:
    real = datetime.now(UTC)
    if settings.mode == "production":
        return real
    offset = await db.scalar(text("SELECT offset_seconds FROM dev_clock"))
    return real + timedelta(seconds=offset or 0)


async def advance(db: AsyncSession, settings: Settings, by: timedelta) -> None:
    if settings.mode == "production":
        raise RuntimeError("the clock cannot be moved in production")
    await db.execute(text("INSERT INTO dev_clock (id, offset_seconds) VALUES (true, :s) ON CONFLICT (id) "
                          "DO UPDATE SET offset_seconds = dev_clock.offset_seconds + :s"),
                     {"s": int(by.total_seconds())})


async def reset(db: AsyncSession) -> None:
    await db.execute(text("DELETE FROM dev_clock"))
