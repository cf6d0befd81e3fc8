"""The creator's side of checkout: the sales list with refunds, and paying for their tier."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.catalog import creators
from app.catalog.tiers import TIERS
from app.catalog.views import Req, me_creator
from app.checkout import billing, orders, sales
from app.db.engine import Db
from app.web.errors import FormInvalid
from app.web.flash import flash
from app.web.forms import read_form


@get("/creator/sales")
async def sales_page(request: Req, db: Db, after: FromQuery[str] = "") -> Template:
    creator = await me_creator(request, db)
    state = request.query_params.get("state", "")
    page = await sales.sales(db, creator.user_id, state[:20], after or None)
    return Template(template_name="checkout/sales.html", context={
        "page": page, "state": state if state in sales.SALE_STATES else "", "states": sales.SALE_STATES,
    })


@post("/creator/sales/{order_id:str}/refund")
async def refund(request: Req, db: Db, order_id: FromPath[str]) -> Redirect:
    creator = await me_creator(request, db)
    refund_request = await sales.refund_request(db, creator.user_id, order_id)
    await request.app.state.gateway.refund(refund_request)  # a failure leaves nothing marked: click again
    await sales.note_refund_sent(db, order_id)
    await db.commit()
    flash(request, "Refund sent. The buyer's access ends as soon as the payment processor confirms it.")
    return Redirect("/creator/sales", status_code=303)


@get("/creator/billing")
async def billing_page(request: Req, db: Db) -> Template:
    creator = await me_creator(request, db)
    settings = request.app.state.settings
    return Template(template_name="checkout/billing.html", context={
        "creator": creator, "tiers": list(TIERS.values()), "chosen": TIERS[creator.tier],
        "in_force": creators.tier_in_force(creator, settings), "grace_days": settings.tier_grace_days,
        "just_paid": request.query_params.get("paid") == "1",
    })


@post("/creator/billing/subscribe")
async def subscribe(request: Req, db: Db) -> Redirect:
    creator = await me_creator(request, db)
    tier = (await read_form(request)).get("tier", "")
    if tier not in TIERS:
        raise FormInvalid({"tier": "Pick one of the tiers."})
    email = await orders.email_of(db, creator.user_id)
    session = await request.app.state.gateway.create_subscription_checkout(
        billing.subscription_request(creator, email, tier, request.app.state.settings))
    return Redirect(session.url, status_code=303)


ROUTES = [sales_page, refund, billing_page, subscribe]
