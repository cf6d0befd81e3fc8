"""The home page."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from app.db.engine import Db
from app.home.service import newest_creators


@get("/")
async def home(db: Db) -> Template:
    return Template(template_name="home/index.html", context={"creators": await newest_creators(db)})


ROUTES = [home]
