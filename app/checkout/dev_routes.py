"""The development processor's hosted checkout page (/dev/checkout/<session>), mounted only outside production
and only when no Stripe keys are configured. Its buttons deliver signed events to our real webhook endpoint."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.catalog.views import Req
from app.checkout.devprocessor import DevProcessor
from app.web.errors import NotFound
from app.web.flash import flash

ACTIONS = {
    "payment": ("pay", "decline", "pay-later", "expire", "cancel", "dispute", "dispute-won", "dispute-lost"),
    "subscription": ("pay", "cancel", "invoice-failed", "end"),
}


def dev_processor(request: Req) -> DevProcessor:
    """The app's gateway, which is the development processor wherever these routes are mounted."""
    return request.app.state.gateway  # type: ignore[no-any-return]


@get("/dev/checkout/{token:str}")
async def dev_checkout(request: Req, token: FromPath[str]) -> Template:
    session = dev_processor(request).open(token)
    return Template(template_name="checkout/dev_checkout.html", context={"session": session, "token": token},
                    headers={"Cache-Control": "no-store"})


@post("/dev/checkout/{token:str}/{action:str}")
async def dev_checkout_action(request: Req, token: FromPath[str], action: FromPath[str]) -> Redirect:
    processor = dev_processor(request)
    session = processor.open(token)
    if action not in ACTIONS[session["mode"]]:
        raise NotFound("The development processor has no such button.")
    done = processor.success_url(session)
    back = f"/dev/checkout/{token}"
    if action == "cancel":
        return Redirect(session["cancel_url"], status_code=303)
    if action == "pay":
        await processor.pay(session)
    elif action in ("decline", "pay-later"):
        # A declined payment: the session completes unpaid and the payment then fails (as a bank debit would).
        await processor.pay_later(session, succeeds=action == "pay-later")
    elif action == "expire":
        await processor.expire(session)
        return Redirect(session["cancel_url"], status_code=303)
    elif action.startswith("dispute"):
        await processor.dispute(session, {"dispute": "open", "dispute-won": "won", "dispute-lost": "lost"}[action])
        flash(request, "Dispute event sent.")
        return Redirect(back, status_code=303)
    elif action == "invoice-failed":
        await processor.invoice_failed(session)
        flash(request, "A failed invoice was sent: the subscription is past due.")
        return Redirect(back, status_code=303)
    elif action == "end":
        await processor.end_subscription(session)
        flash(request, "The subscription was canceled.")
        return Redirect(back, status_code=303)
    return Redirect(done, status_code=303)


DEV_ROUTES = [dev_checkout, dev_checkout_action]
