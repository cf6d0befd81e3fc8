"""Development only (mounted with the development processor): its hosted Connect onboarding, and the payout clock
that lets a hold period or a payout date pass without waiting for it."""

from __future__ import annotations

from datetime import timedelta

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.catalog.views import Req
from app.checkout.dev_routes import dev_processor
from app.db.engine import Db
from app.payouts import clock
from app.web.errors import FormInvalid
from app.web.flash import flash
from app.web.forms import read_form
from app.worker.queue import enqueue


@get("/dev/connect/{token:str}")
async def onboarding_page(request: Req, token: FromPath[str]) -> Template:
    link = dev_processor(request).open_onboarding(token)
    return Template(template_name="payouts/dev_connect.html", context={"link": link, "token": token},
                    headers={"Cache-Control": "no-store"})


@post("/dev/connect/{token:str}")
async def onboarding_action(request: Req, token: FromPath[str]) -> Redirect:
    processor = dev_processor(request)
    link = processor.open_onboarding(token)
    action = (await read_form(request)).get("action", "")
    if action not in ("complete", "incomplete"):
        raise FormInvalid({"action": "Pick one of the buttons."})
    await processor.onboard(link["account"], complete=action == "complete")
    return Redirect(link["return_url"], status_code=303)


@get("/dev/clock")
async def clock_page(request: Req, db: Db) -> Template:
    settings = request.app.state.settings
    return Template(template_name="payouts/dev_clock.html", context={"now": await clock.now(db, settings)},
                    headers={"Cache-Control": "no-store"})


@post("/dev/clock")
async def clock_action(request: Req, db: Db) -> Redirect:
    settings = request.app.state.settings
    form = await read_form(request)
    if form.get("action") == "reset":
        await clock.reset(db)
        message = "The clock is back to real time."
    else:
        try:
            days = int(form.get("days", ""))
        except ValueError:
            days = 0
        if not 1 <= days <= 60:
            raise FormInvalid({"days": "Move the clock 1 to 60 days ahead."})
        await clock.advance(db, settings, timedelta(days=days))
        message = f"The clock moved {days} days ahead; the payout scheduler runs now."
    await enqueue(db, "payouts.schedule", {})  # a new payout period may have begun
    await db.commit()
    flash(request, message)
    return Redirect("/dev/clock", status_code=303)


ROUTES = [onboarding_page, onboarding_action, clock_page, clock_action]
