"""Helpers the catalog's routes share: who the creator is, URLs of covers, and turning items back into forms."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.auth import current_user
from app.catalog import creators, items
from app.catalog.forms import tags_for_display
from app.catalog.models import Creator, Item
from app.media.models import Upload
from app.media.storage import Storage
from app.web.errors import LoginRequired
from app.web.text import duration

Req = Request[Any, Any, Any]
DAY = 86400


async def me_creator(request: Req, db: AsyncSession) -> Creator:
    """The signed-in creator (login required; someone who has not started selling is sent to do so)."""
    user = current_user(request)
    if user is None:
        raise LoginRequired("Please log in to continue.")
    return await creators.require(db, user.id)


async def my_item(request: Req, db: AsyncSession, public_id: str, *, for_update: bool = False) -> tuple[Creator, Item]:
    """The signed-in creator and one of their own items (anyone else's is simply not found)."""
    creator = await me_creator(request, db)
    return creator, await items.owned_item(db, creator.user_id, public_id, for_update=for_update)


def cover_url(request: Req, upload: Upload | None, size: int = 640) -> str | None:
    if upload is None or upload.state != "ready" or upload.deleted_at is not None:
        return None
    return thumb_url(request.app.state.storage, upload.public_id, upload.thumbnails, size)


def thumb_url(storage: Storage, upload_public_id: str | None, sizes: list[int], size: int = 640) -> str | None:
    """A signed URL for a cover thumbnail that stays the same all day, so pages and browsers can cache it."""
    if not upload_public_id or not sizes:
        return None
    chosen = min((s for s in sizes if s >= size), default=max(sizes))
    return storage.signed_url(
        f"uploads/{upload_public_id}/thumb-{chosen}.webp", filename=f"cover-{chosen}.webp",
        content_type="image/webp", ttl_seconds=day_stable_ttl(), disposition="inline",
    )


def day_stable_ttl() -> int:
    """Seconds until the end of tomorrow: a URL signed with it is the same all day, so pages stay cacheable."""
    now = int(time.time())
    return (now // DAY + 2) * DAY - now


def money_input(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents else ""


def chapters_text(chapters: list[dict[str, Any]]) -> str:
    return "\n".join(f"{duration(chapter['start'])} {chapter['title']}" for chapter in chapters)


def item_form(item: Item, project_public_id: str = "") -> dict[str, str]:
    """The item's saved values, as the wizard's forms show them."""
    return {
        "title": item.title, "slug": item.slug, "description": item.description_md, "subtype": item.subtype,
        "project": project_public_id, "tags": tags_for_display(item.tags),
        "release_date": item.release_date.isoformat() if item.release_date else "", "credits": item.credits,
        "ai_label": item.ai_label or "", "body": item.body_md, "chapters": chapters_text(item.chapters),
        "price_mode": item.price_mode, "price": money_input(item.price_cents),
        "min_price": money_input(item.min_price_cents), "suggested_price": money_input(item.suggested_price_cents),
    }
