"""/admin/payouts: the payout queue for admins. Every action needs a reason and is written to the audit log."""

from __future__ import annotations

import secrets

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.auth import current_user, requires_admin
from app.audit import service as audit
from app.catalog.views import Req
from app.db.engine import Db
from app.payouts import admin, clock
from app.web.flash import flash
from app.web.forms import read_form

BACK = "/admin/payouts"


def _actor(request: Req) -> int:
    user = current_user(request)
    assert user is not None  # requires_admin let the request in
    return user.id


async def _context(request: Req, db: Db) -> dict[str, object]:
    settings = request.app.state.settings
    return {
        "totals": await admin.totals(db),
        "failed": await admin.listing(db, "failed"),
        "stuck": await admin.listing(db, "stuck"),
        "recent": await admin.listing(db, "recent"),
        "held_back": await admin.held_back(db, await clock.now(db, settings), settings),
        "audit": await audit.recent(db, 20),
        "uncredited": await admin.uncredited_count(db),
        "nonce": secrets.token_hex(16),
    }


@get(BACK, guards=[requires_admin])
async def queue_page(request: Req, db: Db) -> Template:
    return Template(template_name="payouts/admin.html", context=await _context(request, db),
                    headers={"Cache-Control": "private, no-store"})


@post(BACK + "/{public_id:str}/retry", guards=[requires_admin])
async def retry(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    reason = audit.reason_of(await read_form(request))
    await admin.retry(db, request.app.state.settings, _actor(request), public_id, reason)
    await db.commit()
    flash(request, f"Payout {public_id} will be sent again now.")
    return Redirect(BACK, status_code=303)


@post(BACK + "/{public_id:str}/cancel", guards=[requires_admin])
async def cancel(request: Req, db: Db, public_id: FromPath[str]) -> Redirect:
    reason = audit.reason_of(await read_form(request))
    state = request.app.state
    await admin.cancel(db, state.gateway, state.accounts.mailer, _actor(request), public_id, reason)
    await db.commit()
    flash(request, f"Payout {public_id} was canceled; its money is back in the creator's balance.")
    return Redirect(BACK, status_code=303)


@post(BACK + "/pause", guards=[requires_admin])
async def pause(request: Req, db: Db) -> Redirect:
    form = await read_form(request)
    reason = audit.reason_of(form)
    paused = form.get("action") != "resume"
    state = request.app.state
    await admin.pause(db, state.gateway, state.accounts.mailer, _actor(request), form.get("username", ""), reason,
                      paused)
    await db.commit()
    flash(request, "Payouts paused." if paused else "Payouts resumed.")
    return Redirect(BACK, status_code=303)


@post(BACK + "/adjust", guards=[requires_admin])
async def adjust(request: Req, db: Db) -> Redirect:
    written = await admin.adjust(db, _actor(request), await read_form(request))
    await db.commit()
    flash(request, "Adjustment written to the ledger." if written else "That adjustment was already written.")
    return Redirect(BACK, status_code=303)


@post(BACK + "/run", guards=[requires_admin])
async def run_now(request: Req, db: Db) -> Redirect:
    settings = request.app.state.settings
    reason = audit.reason_of(await read_form(request))
    made = await admin.pay_now(db, settings, _actor(request), reason, await clock.now(db, settings))
    await db.commit()
    flash(request, f"{made} payout(s) created.")
    return Redirect(BACK, status_code=303)


ROUTES = [queue_page, retry, cancel, pause, adjust, run_now]
