"""The admin's view of the processor's events: recent deliveries with their processing state, and re-running one
that failed."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import update

from app.accounts.auth import requires_admin
from app.catalog.views import Req
from app.checkout import events
from app.checkout.models import EVENT_STATES, PaymentEvent
from app.checkout.webhooks import MAX_ATTEMPTS
from app.db.engine import Db
from app.web.errors import Conflict
from app.web.flash import flash
from app.worker.queue import enqueue


@get("/admin/payments", guards=[requires_admin])
async def payment_events(request: Req, db: Db) -> Template:
    state = request.query_params.get("state", "")  # ("state" names the app state among handler arguments)
    wanted = state if state in EVENT_STATES else ""
    return Template(template_name="checkout/admin_events.html", context={
        "events": await events.recent(db, 100, wanted or None), "state": wanted, "states": EVENT_STATES,
    })


@post("/admin/payments/{event_id:int}/retry", guards=[requires_admin])
async def retry_event(request: Req, db: Db, event_id: FromPath[int]) -> Redirect:
    changed = await db.execute(update(PaymentEvent).where(PaymentEvent.id == event_id, PaymentEvent.state == "failed")
                               .values(state="received", last_error="").returning(PaymentEvent.stripe_id))
    stripe_id = changed.scalar_one_or_none()
    if stripe_id is None:
        raise Conflict("Only a failed event can be run again.")
    await enqueue(db, "checkout.process_event", {"event_id": event_id}, max_attempts=MAX_ATTEMPTS)
    await db.commit()
    flash(request, f"Event {stripe_id} will be processed again.")
    return Redirect("/admin/payments", status_code=303)


ROUTES = [payment_events, retry_event]
