"""Creators: starting to sell, the profile, the tier in force, and storage accounting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.forms import ProfileForm, StartSellingForm
from app.catalog.models import Creator, Item, Project
from app.catalog.tiers import TIERS, Tier, human_size
from app.settings import Settings
from app.web.errors import AppError, Conflict, Forbidden


class QuotaExceeded(AppError):
    status_code = 413
    title = "Not enough storage"


async def get(db: AsyncSession, user_id: int) -> Creator | None:
    return await db.get(Creator, user_id)


async def require(db: AsyncSession, user_id: int) -> Creator:
    creator = await db.get(Creator, user_id)
    if creator is None:
        raise Forbidden("Start selling first: pick a tier and set up your creator profile.")
    return creator


def tier_in_force(creator: Creator, settings: Settings) -> Tier:
    """The chosen tier while it is paid for (and for a grace period once a payment is late); otherwise the
    default tier. Only new uploads are held to it: files already stored stay."""
    if creator.tier_status == "active":
        return TIERS[creator.tier]
    if creator.tier_status == "past_due" and creator.past_due_since is not None:
        if datetime.now(UTC) - creator.past_due_since < timedelta(days=settings.tier_grace_days):
            return TIERS[creator.tier]
    return TIERS[settings.default_tier]


async def start_selling(db: AsyncSession, user_id: int, form: StartSellingForm) -> Creator:
    if await db.get(Creator, user_id) is not None:
        raise Conflict("You already sell on Fairshelf.")
    creator = Creator(user_id=user_id, tier=form.tier, currency=form.currency, bio=form.bio, links=form.links)
    db.add(creator)
    await db.flush()
    return creator


async def update_profile(db: AsyncSession, user_id: int, form: ProfileForm) -> None:
    await db.execute(update(Creator).where(Creator.user_id == user_id).values(bio=form.bio, links=form.links))


async def reserve_storage(db: AsyncSession, creator: Creator, size: int, settings: Settings) -> None:
    """Count `size` bytes against the creator's quota in one conditional UPDATE (no check-then-act race)."""
    tier = tier_in_force(creator, settings)
    row = await db.execute(
        text(
            "UPDATE creators SET storage_used_bytes = storage_used_bytes + :size "
            "WHERE user_id = :id AND storage_used_bytes + :size <= :quota RETURNING storage_used_bytes"
        ),
        {"size": size, "id": creator.user_id, "quota": tier.storage_bytes},
    )
    if row.scalar_one_or_none() is None:
        used = await db.scalar(select(Creator.storage_used_bytes).where(Creator.user_id == creator.user_id)) or 0
        raise QuotaExceeded(
            f"This {human_size(size)} file does not fit: your {tier.name} tier holds {human_size(tier.storage_bytes)} "
            f"and you use {human_size(used)}. Delete files you no longer need, or move to a bigger tier."
        )


async def release_storage(db: AsyncSession, creator_id: int, size: int) -> None:
    await db.execute(
        text("UPDATE creators SET storage_used_bytes = greatest(storage_used_bytes - :size, 0) WHERE user_id = :id"),
        {"size": size, "id": creator_id},
    )


async def counts(db: AsyncSession, creator_id: int) -> dict[str, int]:
    items = await db.scalar(
        select(func.count()).select_from(Item).where(Item.creator_id == creator_id, Item.deleted_at.is_(None))
    )
    projects = await db.scalar(select(func.count()).select_from(Project).where(Project.creator_id == creator_id))
    return {"items": items or 0, "projects": projects or 0}
