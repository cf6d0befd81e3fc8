"""The development mailbox: every message the app sent, readable in the browser. Absent in production."""

from __future__ import annotations

from litestar import get
from litestar.params import FromPath
from litestar.response import Template

from app.db.engine import Db
from app.mail.models import Email
from app.mail.service import recent
from app.web.errors import NotFound


@get("/dev/mail", cache=False)
async def mailbox(db: Db) -> Template:
    return Template(template_name="mail/mailbox.html", context={"emails": await recent(db)})


@get("/dev/mail/{email_id:int}", cache=False)
async def message(db: Db, email_id: FromPath[int]) -> Template:
    email = await db.get(Email, email_id)
    if email is None:
        raise NotFound("There is no message with that number.")
    return Template(template_name="mail/message.html", context={"email": email})


DEV_ROUTES = [mailbox, message]
