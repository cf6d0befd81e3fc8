"""Items: the draft wizard's steps, versions, publishing and the other status changes, and reading them back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Select, String, and_, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.catalog.forms import DetailsForm, NewItemForm, PricingForm, VersionForm
from app.catalog.models import VERSIONED_TYPES, Creator, Item, ItemVersion, Project
from app.db.base import new_public_id
from app.db.engine import Compiled
from app.media.models import Upload
from app.web.errors import Conflict, FormInvalid, NotFound
from app.web.text import render_markdown

STEPS = ("details", "files", "pricing", "publish")
PUBLIC_STATUSES = ("published", "unlisted")


async def create_draft(db: AsyncSession, creator: Creator, form: NewItemForm) -> Item:
    project = await owned_project(db, creator.user_id, form.project) if form.project else None
    item = Item(public_id=new_public_id(), creator_id=creator.user_id, type=form.type, currency=creator.currency,
                project_id=project.id if project else None, wizard_step="details")
    db.add(item)
    await db.flush()
    if item.type in VERSIONED_TYPES:
        db.add(ItemVersion(item_id=item.id, label="1.0"))
        await db.flush()
    return item


async def owned_item(db: AsyncSession, creator_id: int, public_id: str, *, for_update: bool = False) -> Item:
    """The creator's own item; anyone else's (or a deleted one) is simply not found."""
    query = select(Item).where(Item.public_id == public_id, Item.creator_id == creator_id, Item.deleted_at.is_(None))
    item = await db.scalar(query.with_for_update() if for_update else query)
    if item is None:
        raise NotFound("There is no such item among yours.")
    return item


async def public_id_of(db: AsyncSession, item_id: int | None) -> str:
    return await db.scalar(select(Item.public_id).where(Item.id == item_id)) or ""


async def owned_project(db: AsyncSession, creator_id: int, public_id: str) -> Project:
    project = await db.scalar(select(Project).where(Project.public_id == public_id, Project.creator_id == creator_id))
    if project is None:
        raise FormInvalid({"project": "Pick one of your projects."})
    return project


async def _unique_slug(db: AsyncSession, item: Item, wanted: str, typed: bool) -> str:
    """`wanted` if free among the creator's items; a derived slug gets -2, -3 … instead of an error."""
    base = wanted or "untitled"
    for n in range(1, 200):
        slug = base if n == 1 else f"{base[:75]}-{n}"
        taken = await db.scalar(
            select(Item.id).where(Item.creator_id == item.creator_id, Item.slug == slug, Item.id != item.id,
                                  Item.deleted_at.is_(None))
        )
        if not taken:
            return slug
        if typed:
            raise FormInvalid({"slug": "You already have an item with this URL name; pick another."})
    raise Conflict("Could not find a free URL name; please type one.")


async def update_details(db: AsyncSession, item: Item, form: DetailsForm, slug_typed: bool) -> None:
    project = await owned_project(db, item.creator_id, form.project) if form.project else None
    item.slug = await _unique_slug(db, item, form.slug, slug_typed)
    item.title = form.title
    item.description_md, item.description_html = form.description, render_markdown(form.description)
    item.subtype = form.subtype
    item.project_id = project.id if project else None
    item.tags = form.tags
    item.release_date = form.release_date
    item.credits = form.credits
    item.ai_label = form.ai_label
    if item.type == "text":
        item.body_md, item.body_html = form.body, render_markdown(form.body)
    if item.type == "audio":
        item.chapters = form.chapters
    _advance(item, "files" if item.type in VERSIONED_TYPES else "pricing")
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise FormInvalid({"slug": "You already have an item with this URL name; pick another."}) from None


async def update_pricing(db: AsyncSession, item: Item, form: PricingForm) -> None:
    item.price_mode = form.mode
    item.price_cents = form.price_cents
    item.min_price_cents = form.min_price_cents
    item.suggested_price_cents = form.suggested_price_cents
    _advance(item, "publish")
    await db.flush()


def _advance(item: Item, step: str) -> None:
    """Remember the furthest step reached, so a closed tab resumes where the creator left off."""
    if item.status == "draft" and STEPS.index(step) > STEPS.index(item.wizard_step):
        item.wizard_step = step


def mark_files_done(item: Item) -> None:
    _advance(item, "pricing")


async def versions(db: AsyncSession, item_id: int) -> list[ItemVersion]:
    return list(await db.scalars(select(ItemVersion).where(ItemVersion.item_id == item_id).order_by(ItemVersion.id)))


async def draft_version(db: AsyncSession, item: Item) -> ItemVersion | None:
    """The version files are being added to: the newest one not yet published."""
    return await db.scalar(
        select(ItemVersion).where(ItemVersion.item_id == item.id, ItemVersion.published_at.is_(None))
        .order_by(ItemVersion.id.desc()).limit(1)
    )


async def start_version(db: AsyncSession, item: Item, form: VersionForm) -> ItemVersion:
    if item.type not in VERSIONED_TYPES:
        raise Conflict("Text items do not have versions; edit the text instead.")
    if await draft_version(db, item) is not None:
        raise Conflict("Finish or publish the version you started before starting another.")
    if await db.scalar(select(ItemVersion.id).where(ItemVersion.item_id == item.id, ItemVersion.label == form.label)):
        raise FormInvalid({"label": f"There is already a version {form.label}."}, {"label": form.label,
                                                                                   "changelog": form.changelog})
    version = ItemVersion(item_id=item.id, label=form.label, changelog=form.changelog)
    db.add(version)
    await db.flush()
    return version


async def ready_files(db: AsyncSession, version_id: int) -> int:
    return await db.scalar(
        select(func.count()).select_from(Upload).where(
            Upload.version_id == version_id, Upload.state == "ready", Upload.deleted_at.is_(None)
        )
    ) or 0


async def publish_version(db: AsyncSession, item: Item) -> ItemVersion:
    version = await draft_version(db, item)
    if version is None:
        raise Conflict("There is no unpublished version.")
    if not await ready_files(db, version.id):
        raise Conflict(f"Version {version.label} has no ready files yet.")
    version.published_at = datetime.now(UTC)
    await db.flush()
    return version


async def publish_problems(db: AsyncSession, item: Item) -> list[str]:
    """What stands between this draft and publishing, in words the creator can act on."""
    problems = []
    if not item.title:
        problems.append("Give it a title (Details).")
    if item.ai_label is None:
        problems.append("Say whether and how AI was used (Details).")
    if item.type == "text" and not item.body_md.strip():
        problems.append("Write the text (Details).")
    if item.type in VERSIONED_TYPES:
        version = await draft_version(db, item)
        published = await db.scalar(
            select(func.count()).select_from(ItemVersion)
            .where(ItemVersion.item_id == item.id, ItemVersion.published_at.is_not(None))
        )
        if not published and (version is None or not await ready_files(db, version.id)):
            problems.append("Upload at least one file and wait until it is ready (Files).")
    if item.price_mode == "fixed" and item.price_cents <= 0:
        problems.append("Set a price (Pricing).")
    return problems


async def publish(db: AsyncSession, item: Item) -> None:
    problems = await publish_problems(db, item)
    if problems:
        raise Conflict("Not ready to publish yet: " + " ".join(problems))
    if item.type in VERSIONED_TYPES:
        version = await draft_version(db, item)
        if version is not None and await ready_files(db, version.id):
            version.published_at = datetime.now(UTC)
    item.status = "published"
    item.published_at = item.published_at or datetime.now(UTC)
    await db.flush()


async def set_status(db: AsyncSession, item: Item, status: str) -> None:
    """Unlist (reachable by link only), unpublish (back to draft) or archive; buyers keep their access."""
    if status not in ("unlisted", "draft", "archived"):
        raise Conflict("That is not a status an item can be moved to.")
    if status == "unlisted" and item.status != "published":
        await publish(db, item)  # reachable by link means public: the same checks as publishing
    item.status = status
    await db.flush()


async def delete(db: AsyncSession, item: Item) -> None:
    """Deleting hides the item everywhere; its rows and files stay, so anyone who bought it keeps access."""
    item.deleted_at = datetime.now(UTC)
    item.status = "archived"
    await db.flush()


async def list_for_creator(db: AsyncSession, creator_id: int) -> list[Item]:
    return list(await db.scalars(
        select(Item).where(Item.creator_id == creator_id, Item.deleted_at.is_(None))
        .order_by(Item.updated_at.desc(), Item.id.desc())
    ))


@dataclass(frozen=True, slots=True)
class PublicItem:
    """An item as its page shows it. `item` is a row of just the columns a page needs (never the text body,
    which is for buyers); the rest are what the page links to."""

    item: Any
    creator_name: str
    creator_username: str
    project: tuple[str, str] | None  # name, slug
    cover: tuple[str, list[int]] | None  # upload public id, thumbnail sizes
    versions: list[dict[str, Any]]  # label, changelog, published (oldest first)
    is_owner: bool


EXCERPT_SOURCE = 3000  # characters of a text item's Markdown the excerpt is cut from

PAGE_COLUMNS = (
    Item.id, Item.public_id, Item.creator_id, Item.project_id, Item.type, Item.subtype, Item.title, Item.slug,
    Item.description_md, Item.description_html, Item.chapters, Item.price_mode, Item.price_cents,
    Item.min_price_cents, Item.suggested_price_cents, Item.currency, Item.tags, Item.release_date, Item.credits,
    Item.ai_label, Item.status, Item.preview_upload_id, Item.published_at, Item.updated_at, Item.body_html,
    func.left(Item.body_md, EXCERPT_SOURCE).label("body_start"),
)


def public_item_query() -> Select[Any]:
    """One statement for an item's page (the hottest read there is): the item, its creator, project, ready
    cover and versions. Built once: constructing it costs more than running it."""
    cover = aliased(Upload)
    versions_json = (
        select(func.coalesce(func.json_agg(aggregate_order_by(func.json_build_object(
            "label", ItemVersion.label, "changelog", ItemVersion.changelog,
            "published", ItemVersion.published_at.is_not(None)), ItemVersion.id)), text("'[]'::json")))
        .where(ItemVersion.item_id == Item.id).scalar_subquery()
    )
    return (
        select(*PAGE_COLUMNS, User.display_name, User.username, Project.name, Project.slug, cover.public_id,
               cover.thumbnails, versions_json.label("versions"))
        .join(User, User.id == Item.creator_id)
        .outerjoin(Project, Project.id == Item.project_id)
        .outerjoin(cover, and_(cover.id == Item.cover_upload_id, cover.state == literal_column("'ready'"),
                               cover.deleted_at.is_(None)))
        .where(Item.public_id == bindparam("public_id", type_=String), Item.deleted_at.is_(None))
    )


PUBLIC_ITEM = Compiled(public_item_query())


async def public_item(db: AsyncSession | psycopg.AsyncConnection[Any], public_id: str,
                      viewer_id: int | None) -> PublicItem:
    """An item as its page shows it: published or unlisted for everyone, any state but deleted for its owner."""
    row = await PUBLIC_ITEM.first(db, public_id=public_id[:16])
    if row is None:
        raise NotFound("There is no item at this address.")
    is_owner = viewer_id == row.creator_id
    if row.status not in PUBLIC_STATUSES and not is_owner:
        raise NotFound("There is no item at this address.")
    columns = len(PAGE_COLUMNS)
    name, username, project_name, project_slug, cover_id, cover_sizes, versions_list = row[columns:]
    return PublicItem(
        row, name, username, (project_name, project_slug) if project_name else None,
        (cover_id, cover_sizes) if cover_id else None,
        [v for v in versions_list if v["published"] or is_owner], is_owner,
    )
