"""Projects: a creator's groups of items."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.forms import ProjectForm
from app.catalog.models import Project
from app.db.base import new_public_id
from app.web.errors import FormInvalid, NotFound
from app.web.text import render_markdown

TAKEN = "You already have a project with this URL name; pick another."


async def list_for(db: AsyncSession, creator_id: int) -> list[Project]:
    return list(await db.scalars(select(Project).where(Project.creator_id == creator_id).order_by(Project.name)))


async def owned(db: AsyncSession, creator_id: int, public_id: str) -> Project:
    project = await db.scalar(select(Project).where(Project.public_id == public_id, Project.creator_id == creator_id))
    if project is None:
        raise NotFound("There is no such project among yours.")
    return project


async def save(db: AsyncSession, creator_id: int, form: ProjectForm, project: Project | None = None) -> Project:
    values = {"name": form.name, "slug": form.slug, "description": form.description}
    clash = await db.scalar(select(Project.id).where(
        Project.creator_id == creator_id, Project.slug == form.slug,
        Project.id != (project.id if project else -1)))
    if clash:
        raise FormInvalid({"slug": TAKEN}, values)
    if project is None:
        project = Project(public_id=new_public_id(), creator_id=creator_id)
        db.add(project)
    project.name, project.slug = form.name, form.slug
    project.description_md, project.description_html = form.description, render_markdown(form.description)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise FormInvalid({"slug": TAKEN}, values) from None
    return project
