"""Buying, claiming, the library, and handing out files: the buyer's side of checkout."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Response, get, post, route
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.accounts.auth import current_user, requires_login
from app.catalog.views import Req, cover_url, money_input
from app.checkout import library, orders
from app.checkout.forms import BuyForm
from app.checkout.gateway import PaymentRequest
from app.db.engine import Db
from app.discovery import pages
from app.media.links import file_link
from app.web import pagination
from app.web.errors import Conflict, FormInvalid, NotFound
from app.web.flash import flash
from app.web.forms import read_form


async def _buy_context(request: Req, db: Db, item: Any) -> dict[str, Any]:
    viewer = current_user(request)
    creator, cover, owned = await orders.buy_page_facts(db, item, viewer)
    return {
        "item": item, "creator": creator, "signed_in": viewer, "owned": owned,
        "cover": cover_url(request, cover, 320),
        "canceled": request.query_params.get("canceled") == "1",
    }


@get("/i/{public_id:str}/buy")
async def buy_page(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    item = await orders.buyable_item(db, public_id)
    context = await _buy_context(request, db, item)
    form = {"amount": money_input(item.suggested_price_cents if item.price_mode == "pwyw" else item.price_cents)}
    return Template(template_name="checkout/buy.html", context={**context, "form": form, "errors": {}})


@post("/i/{public_id:str}/buy")
async def buy(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    settings = request.app.state.settings
    viewer = current_user(request)
    item = await orders.buyable_item(db, public_id)
    if item.price_mode == "free":
        if viewer is None:
            return Redirect(f"/login?next=/i/{item.public_id}/buy", status_code=303)
        added = await orders.claim_free(db, item, viewer)
        await db.commit()
        flash(request, "Added to your library." if added else "It was already in your library.")
        return Redirect("/library", status_code=303)
    data = await read_form(request)
    account_email = await orders.email_of(db, viewer.id) if viewer else None
    try:
        form = BuyForm.parse(data, item, account_email)
        order = await orders.start_order(db, item, viewer, form, settings.livemode)
    except (FormInvalid, Conflict) as exc:  # raised before anything was written
        if isinstance(exc, Conflict):
            flash(request, exc.message, "info")
            return Redirect("/library", status_code=303)
        context = await _buy_context(request, db, item)
        return Template(template_name="checkout/buy.html", status_code=422,
                        context={**context, "form": data, "errors": exc.errors})
    await db.commit()  # the order exists before the processor hears of it, so its webhook always finds it
    session = await request.app.state.gateway.create_checkout(PaymentRequest(
        order_id=order.public_id, description=f"{item.title or 'Untitled'} — Fairshelf",
        amount_cents=order.amount_cents, currency=order.currency, email=order.buyer_email,
        success_url=f"{settings.base_url}/orders/{order.public_id}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{settings.base_url}/i/{item.public_id}/buy?canceled=1",
    ))
    await orders.record_session(db, order.id, session.id)
    await db.commit()
    return Redirect(session.url, status_code=303)


@get("/orders/{public_id:str}")
async def order_status(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    """Where the processor sends the buyer back. While the payment is being confirmed, HTMX asks again each second."""
    order, item, creator_name = await orders.order_page(db, public_id)
    viewer = current_user(request)
    context = {"order": order, "item": item, "creator_name": creator_name, "signed_in": viewer,
               "mine": viewer is not None and order.buyer_id == viewer.id}
    fragment = request.headers.get("hx-request") == "true"
    return Template(template_name="checkout/_order_status.html" if fragment else "checkout/order.html",
                    context=context, headers={"Cache-Control": "private, no-store", "Vary": "HX-Request"})


@get("/claim/{token:str}")
async def claim_page(request: Req, db: Db, token: FromPath[str]) -> Template:
    settings = request.app.state.settings
    email = orders.claim_email(settings, token)
    return Template(template_name="checkout/claim.html", context={
        "email": email, "token": token, "signed_in": current_user(request),
        "count": await orders.count_unclaimed(db, email),
    })


@post("/claim/{token:str}", guards=[requires_login])
async def claim(request: Req, db: Db, token: FromPath[str]) -> Redirect:
    email = orders.claim_email(request.app.state.settings, token)
    viewer = current_user(request)
    assert viewer is not None
    count = await orders.claim_by_email(db, viewer.id, email)
    await db.commit()
    flash(request, f"Added {count} purchase{'s' if count != 1 else ''} to your library." if count
          else "There was nothing left to add: those purchases are already in a library.")
    return Redirect("/library", status_code=303)


@get("/library", guards=[requires_login])
async def library_page(request: Req, db: Db, q: FromQuery[str] = "", after: FromQuery[str] = "",
                       size: FromQuery[str] = "") -> Template:
    viewer = current_user(request)
    assert viewer is not None
    page = await library.library(db, viewer.id, q[:200], after or None, pagination.page_size(size))
    context = {"page": page, "q": q[:200], "media_ok": request.app.state.storage_breaker.available}
    fragment = request.headers.get("hx-request") == "true" and not request.headers.get("hx-history-restore-request")
    name = "library.html" if not fragment else "_library_entries.html" if after else "_library.html"
    return Template(template_name=f"checkout/{name}", context=context, headers={"Vary": "HX-Request"})


@route("/i/{public_id:str}/stream", http_method=[HttpMethod.GET, HttpMethod.HEAD])  # podcast apps ask with HEAD
async def stream(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    """Play what you may (bought, your own, or free): a short-lived signed link to the file, Range included."""
    item = await orders.accessible_item(db, public_id, current_user(request))
    upload = await pages.primary_file(db, item)
    if upload is None:
        raise NotFound("This item has no file to play yet.")
    request.app.state.item_counter.add(public_id, "plays")
    return file_link(request, upload)


@get("/i/{public_id:str}/download")
async def download(request: Req, db: Db, public_id: FromPath[str], file: FromQuery[str] = "") -> Redirect:
    """Download a file of an item you may have: a short-lived signed link that saves it under its own name."""
    viewer = current_user(request)
    item = await orders.accessible_item(db, public_id, viewer)
    upload = await library.downloadable(db, item.id, file[:32] or None)
    if upload is None:
        raise NotFound("There is no such file to download.")
    request.app.state.item_counter.add(public_id, "downloads")
    if viewer is not None:
        await library.note_download(db, viewer.id, item.id)
        await db.commit()
    return file_link(request, upload, "attachment")


ROUTES = [buy_page, buy, order_status, claim_page, claim, library_page, stream, download]
