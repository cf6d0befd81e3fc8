"""The home page."""

from __future__ import annotations

from litestar import get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.home.service import newest_creators


@get("/")
async def home(db: AsyncSession) -> Template:
    return Template(template_name="home/index.html", context={"creators": await newest_creators(db)})


ROUTES = [home]
