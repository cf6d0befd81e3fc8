"""The creator's earnings and payouts page, connecting a payout account, and the CSV exports."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from app.catalog.views import Req, me_creator
from app.checkout import orders
from app.db.engine import Db
from app.payouts import accounts, clock, dashboard, exports
from app.web.errors import NotFound
from app.web.flash import flash


@get("/creator/payouts")
async def payouts_page(request: Req, db: Db, days: FromQuery[int] = 30) -> Template:
    creator = await me_creator(request, db)
    settings = request.app.state.settings
    now = await clock.now(db, settings)
    context = await dashboard.overview(db, creator, settings, now, days if days in dashboard.CHART_DAYS else 30)
    return Template(template_name="payouts/dashboard.html", context={**context, "creator": creator},
                    headers={"Cache-Control": "private, no-store"})


async def _onboarding(request: Req, db: Db) -> Redirect:
    creator = await me_creator(request, db)
    email = await orders.email_of(db, creator.user_id)
    url = await accounts.start_onboarding(db, request.app.state.gateway, creator.user_id, email,
                                          request.app.state.settings)
    return Redirect(url, status_code=303)


@post("/creator/payouts/connect")
async def connect(request: Req, db: Db) -> Redirect:
    return await _onboarding(request, db)


@get("/creator/payouts/connect/refresh")
async def connect_refresh(request: Req, db: Db) -> Redirect:
    """The processor sends the creator here when an onboarding link expired: a fresh link, straight away."""
    return await _onboarding(request, db)


@get("/creator/payouts/connect/return")
async def connect_return(request: Req, db: Db) -> Redirect:
    creator = await me_creator(request, db)
    await accounts.refresh(db, request.app.state.gateway, creator.user_id)
    account = accounts.view(await accounts.account_of(db, creator.user_id))
    if account.ready:
        flash(request, "Your payout account is ready: you will be paid with the next payout.")
    else:
        flash(request, "Thanks! Stripe is checking your details; this page shows anything it still needs.")
    return Redirect("/creator/payouts", status_code=303)


@get("/creator/payouts/export/{what:str}")
async def export(request: Req, db: Db, what: FromPath[str]) -> Stream:
    creator = await me_creator(request, db)
    name = what.removesuffix(".csv")
    if name not in exports.EXPORTS or not what.endswith(".csv"):
        raise NotFound("There is no such export: try sales.csv, payouts.csv or ledger.csv.")
    return Stream(exports.stream(request.app.state.sessionmaker, name, creator.user_id), media_type="text/csv",
                  headers={"Content-Disposition": f'attachment; filename="fairshelf-{name}.csv"',
                           "Cache-Control": "private, no-store"})


ROUTES = [payouts_page, connect, connect_refresh, connect_return, export]
