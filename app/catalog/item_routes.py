"""The item wizard (type → details → files → pricing → publish) and the item's later edits and status changes.

Every step saves the draft, so a closed tab loses nothing; each page works as a plain form post, and HTMX adds
inline validation on blur and uploads with a progress bar.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import creators, items, projects
from app.catalog.forms import AI_LABELS, SUBTYPES, DetailsForm, NewItemForm, PricingForm, VersionForm
from app.catalog.models import ITEM_TYPES, VERSIONED_TYPES, Creator, Item
from app.catalog.views import Req, cover_url, item_form, me_creator, my_item
from app.db.engine import Db
from app.media import uploads
from app.media.models import Upload
from app.web.errors import FormInvalid, NotFound
from app.web.flash import flash
from app.web.forms import read_form

TYPE_LABELS = {"audio": "Audio", "video": "Video", "text": "Text", "image": "Image", "file": "File"}
STEP_LABELS = {"details": "Details", "files": "Files", "pricing": "Pricing", "publish": "Publish"}


def _steps(item: Item) -> list[str]:
    return [s for s in items.STEPS if s != "files" or item.type in VERSIONED_TYPES]


async def _step_page(request: Req, db: AsyncSession, creator: Creator, item: Item, step: str,
                     errors: dict[str, str] | None = None, form: dict[str, Any] | None = None,
                     status_code: int = 200) -> Template:
    own_projects = await projects.list_for(db, creator.user_id)
    project = next((p for p in own_projects if p.id == item.project_id), None)
    steps = _steps(item)
    index = steps.index(step)
    context: dict[str, Any] = {
        "item": item, "step": step, "steps": [(s, STEP_LABELS[s]) for s in steps],
        "back": steps[index - 1] if index else None, "projects": own_projects,
        "errors": errors or {}, "form": {**item_form(item, project.public_id if project else ""), **(form or {})},
        "subtypes": SUBTYPES, "ai_labels": AI_LABELS, "type_label": TYPE_LABELS[item.type],
        "cover": cover_url(request, await db.get(Upload, item.cover_upload_id)) if item.cover_upload_id else None,
    }
    if step == "files":
        settings = request.app.state.settings
        context.update(
            versions=await items.versions(db, item.id),
            draft_version=await items.draft_version(db, item),
            files=await uploads.for_item(db, item.id),
            tier=creators.tier_in_force(creator, settings),
            cover_upload=await db.get(Upload, item.cover_upload_id) if item.cover_upload_id else None,
            preview_upload=await db.get(Upload, item.preview_upload_id) if item.preview_upload_id else None,
        )
    if step == "publish":
        context["problems"] = await items.publish_problems(db, item)
    return Template(template_name="catalog/item_step.html", context=context, status_code=status_code)


@get("/creator/items/new")
async def new_item_page(request: Req, db: Db) -> Template:
    creator = await me_creator(request, db)
    return Template(template_name="catalog/new_item.html", context={
        "errors": {}, "form": {"project": request.query_params.get("project", "")},
        "types": ITEM_TYPES, "type_labels": TYPE_LABELS, "projects": await projects.list_for(db, creator.user_id)})


@post("/creator/items/new")
async def create_item(request: Req, db: Db) -> Response[Any]:
    creator = await me_creator(request, db)
    try:
        item = await items.create_draft(db, creator, NewItemForm.parse(await read_form(request)))
    except FormInvalid as exc:
        return Template(template_name="catalog/new_item.html", status_code=422, context={
            "errors": exc.errors, "form": exc.values, "types": ITEM_TYPES, "type_labels": TYPE_LABELS,
            "projects": await projects.list_for(db, creator.user_id)})
    await db.commit()
    return Redirect(f"/creator/items/{item.public_id}/details", status_code=303)


@get("/creator/items/{public_id:str}")
async def resume_item(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    """Back to where the creator left off."""
    _, item = await my_item(request, db, public_id)
    return Redirect(f"/creator/items/{item.public_id}/{item.wizard_step}", status_code=303)


def _step_page_handler(step: str) -> Any:
    # One GET route per step: a path parameter here would shadow the steps' POST routes (405 instead of a page).
    @get(f"/creator/items/{{public_id:str}}/{step}", name=f"item-step-{step}")
    async def step_page(request: Req, db: Db, public_id: FromPath[str]) -> Template:
        creator, item = await my_item(request, db, public_id)
        if step not in _steps(item):
            raise NotFound("Text items have no files step; write the text on the Details step.")
        return await _step_page(request, db, creator, item, step)

    return step_page


STEP_PAGES = [_step_page_handler(step) for step in items.STEPS]


@post("/creator/items/{public_id:str}/details")
async def save_details(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    creator, item = await my_item(request, db, public_id, for_update=True)
    data = await read_form(request)
    try:
        form = DetailsForm.parse(data, item.type)
        await items.update_details(db, item, form, slug_typed=bool(data.get("slug", "").strip()))
    except FormInvalid as exc:
        # Nothing half-saved: roll back, then read the creator and item afresh for the form's page.
        await db.rollback()
        creator, item = await my_item(request, db, public_id)
        return await _step_page(request, db, creator, item, "details", exc.errors, data, 422)
    await db.commit()
    flash(request, "Details saved.")
    return Redirect(f"/creator/items/{item.public_id}/{_next(item, 'details')}", status_code=303)


@post("/creator/items/{public_id:str}/validate/{step:str}")
async def validate_field(request: Req, db: Db, public_id: FromPath[str], step: FromPath[str]) -> Template:
    """Inline validation on blur: the step's form, with the message (if any) for the field just left."""
    creator, item = await my_item(request, db, public_id)
    data = await read_form(request)
    field = request.headers.get("hx-trigger-name", "")
    errors: dict[str, str] = {}
    try:
        if step == "details":
            DetailsForm.parse(data, item.type)
        elif step == "pricing":
            PricingForm.parse(data)
    except FormInvalid as exc:
        errors = {field: exc.errors[field]} if field in exc.errors else {}
    return await _step_page(request, db, creator, item, step if step in _steps(item) else "details", errors, data)


@post("/creator/items/{public_id:str}/files")
async def finish_files(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    _, item = await my_item(request, db, public_id, for_update=True)
    items.mark_files_done(item)
    await db.commit()
    return Redirect(f"/creator/items/{item.public_id}/pricing", status_code=303)


@post("/creator/items/{public_id:str}/versions")
async def start_version(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    creator, item = await my_item(request, db, public_id, for_update=True)
    data = await read_form(request)
    try:
        version = await items.start_version(db, item, VersionForm.parse(data))
    except FormInvalid as exc:
        return await _step_page(request, db, creator, item, "files", exc.errors, data, 422)
    await db.commit()
    flash(request, f"Version {version.label} started: add its files, then publish it.")
    return Redirect(f"/creator/items/{item.public_id}/files", status_code=303)


@post("/creator/items/{public_id:str}/versions/publish")
async def publish_version(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    _, item = await my_item(request, db, public_id, for_update=True)
    version = await items.publish_version(db, item)
    await db.commit()
    flash(request, f"Version {version.label} is published; earlier versions stay available to buyers.")
    return Redirect(f"/creator/items/{item.public_id}/files", status_code=303)


@post("/creator/items/{public_id:str}/pricing")
async def save_pricing(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    creator, item = await my_item(request, db, public_id, for_update=True)
    data = await read_form(request)
    try:
        await items.update_pricing(db, item, PricingForm.parse(data))
    except FormInvalid as exc:
        return await _step_page(request, db, creator, item, "pricing", exc.errors, data, 422)
    await db.commit()
    flash(request, "Pricing saved.")
    return Redirect(f"/creator/items/{item.public_id}/publish", status_code=303)


@post("/creator/items/{public_id:str}/publish")
async def publish(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    _, item = await my_item(request, db, public_id, for_update=True)
    await items.publish(db, item)
    await db.commit()
    flash(request, f"“{item.title}” is published.")
    return Redirect(f"/i/{item.public_id}", status_code=303)


@post("/creator/items/{public_id:str}/status")
async def change_status(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    _, item = await my_item(request, db, public_id, for_update=True)
    status = (await read_form(request)).get("status", "")
    await items.set_status(db, item, status)
    await db.commit()
    flash(request, {"unlisted": "Unlisted: only people with the link can find it.",
                    "draft": "Unpublished: it is a draft again, visible only to you.",
                    "archived": "Archived: hidden from your page; buyers keep their access."}[status], "info")
    return Redirect("/creator", status_code=303)


@post("/creator/items/{public_id:str}/delete")
async def delete_item(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    _, item = await my_item(request, db, public_id, for_update=True)
    await items.delete(db, item)
    await db.commit()
    flash(request, f"“{item.title or 'Untitled'}” is deleted. Anyone who bought it keeps access.", "info")
    return Redirect("/creator", status_code=303)


def _next(item: Item, step: str) -> str:
    steps = _steps(item)
    return steps[min(steps.index(step) + 1, len(steps) - 1)]


ROUTES = [new_item_page, create_item, resume_item, *STEP_PAGES, save_details, validate_field, finish_files,
          start_version, publish_version, save_pricing, publish, change_status, delete_item]
