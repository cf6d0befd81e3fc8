"""Becoming a creator, the creator's dashboard and profile, and projects."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.auth import current_user, requires_login
from app.catalog import creators, items, projects
from app.catalog.forms import CURRENCIES, ProfileForm, ProjectForm, StartSellingForm
from app.catalog.models import Creator
from app.catalog.tiers import TIERS
from app.catalog.views import Req, cover_url, me_creator
from app.db.engine import Db
from app.media.models import Upload
from app.web.errors import FormInvalid
from app.web.flash import flash
from app.web.forms import read_form


def _tier_context(request: Req) -> dict[str, Any]:
    return {"tiers": list(TIERS.values()), "currencies": CURRENCIES,
            "default_tier": TIERS[request.app.state.settings.default_tier]}


@get("/sell", guards=[requires_login])
async def sell_page(request: Req, db: Db) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    if await creators.get(db, user.id):
        return Redirect("/creator", status_code=303)
    return Template(template_name="catalog/sell.html",
                    context={"errors": {}, "form": {"tier": "basic", "currency": "USD"}, **_tier_context(request)})


@post("/sell", guards=[requires_login], opt={"form_template": "catalog/sell.html", "form_context": _tier_context})
async def start_selling(request: Req, db: Db) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    form = StartSellingForm.parse(await read_form(request))
    await creators.start_selling(db, user.id, form)
    await db.commit()
    flash(request, "You're set up to sell. Create your first item!")
    return Redirect("/creator", status_code=303)


@get("/creator")
async def dashboard(request: Req, db: Db) -> Template:
    creator = await me_creator(request, db)
    settings = request.app.state.settings
    return Template(template_name="catalog/dashboard.html", context={
        "creator": creator,
        "tier": creators.tier_in_force(creator, settings),
        "chosen_tier": TIERS[creator.tier],
        "items": await items.list_for_creator(db, creator.user_id),
        "projects": await projects.list_for(db, creator.user_id),
    })


@get("/creator/profile")
async def profile_page(request: Req, db: Db) -> Template:
    creator = await me_creator(request, db)
    form = {"bio": creator.bio, "links": "\n".join(link["url"] for link in creator.links)}
    return Template(template_name="catalog/profile.html", context={"errors": {}, "form": form,
                                                                   **await _avatar_context(request, db, creator)})


async def _avatar_context(request: Req, db: Db, creator: Creator) -> dict[str, Any]:
    avatar = await db.get(Upload, creator.avatar_upload_id) if creator.avatar_upload_id else None
    return {"avatar": cover_url(request, avatar, 320),
            "per_file_bytes": creators.tier_in_force(creator, request.app.state.settings).per_file_bytes}


@post("/creator/profile", opt={"form_template": "catalog/profile.html", "form_context": {"avatar": None,
                                                                                       "per_file_bytes": 0}})
async def save_profile(request: Req, db: Db) -> Response[Any]:
    creator = await me_creator(request, db)
    form = ProfileForm.parse(await read_form(request))
    await creators.update_profile(db, creator.user_id, form)
    await db.commit()
    flash(request, "Your profile is saved.")
    return Redirect("/creator", status_code=303)


@get("/creator/projects/new")
async def new_project_page(request: Req, db: Db) -> Template:
    await me_creator(request, db)
    return Template(template_name="catalog/project_form.html", context={"errors": {}, "form": {}, "project": None})


@post("/creator/projects/new", opt={"form_template": "catalog/project_form.html", "form_context": {"project": None}})
async def create_project(request: Req, db: Db) -> Response[Any]:
    creator = await me_creator(request, db)
    project = await projects.save(db, creator.user_id, ProjectForm.parse(await read_form(request)))
    await db.commit()
    flash(request, f"Project “{project.name}” created.")
    return Redirect("/creator", status_code=303)


@get("/creator/projects/{public_id:str}")
async def edit_project_page(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    creator = await me_creator(request, db)
    project = await projects.owned(db, creator.user_id, public_id)
    form = {"name": project.name, "slug": project.slug, "description": project.description_md}
    return Template(template_name="catalog/project_form.html",
                    context={"errors": {}, "form": form, "project": project})


@post("/creator/projects/{public_id:str}")
async def save_project(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    creator = await me_creator(request, db)
    project = await projects.owned(db, creator.user_id, public_id)
    try:
        await projects.save(db, creator.user_id, ProjectForm.parse(await read_form(request)), project)
    except FormInvalid as exc:
        return Template(template_name="catalog/project_form.html", status_code=422,
                        context={"errors": exc.errors, "form": exc.values, "project": project})
    await db.commit()
    flash(request, "Project saved.")
    return Redirect("/creator", status_code=303)


ROUTES = [sell_page, start_selling, dashboard, profile_page, save_profile, new_project_page, create_project,
          edit_project_page, save_project]
