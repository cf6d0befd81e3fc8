"""The admin's payout queue against the Stripe fake: creators held back and why, retrying and canceling payouts,
pausing a creator, adjustments; every action audited."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.catalog.conftest import run_jobs
from tests.conftest import post_form
from tests.payouts.stripe_helpers import (
    NET,
    TRANSFERS,
    admin_id,
    audit_rows,
    due_for_payout,
    release_into_faults,
)

pytestmark = pytest.mark.usefixtures("quick_retries")

# --- Held back, and the admin's actions


def held_back_section(html: str) -> str:
    start = html.index('id="held-heading"')
    return html[start:html.index("</section>", start)]


def test_a_paused_creator_and_an_account_not_ready_are_held_back_with_the_reason(stripe_payouts, admin, fake_stripe,
                                                                                  db):
    p = stripe_payouts
    account = due_for_payout(p)
    reason = "Checking a copyright claim on Night Drive"
    response = post_form(admin, "/admin/payouts/pause", {"username": "maker", "reason": reason, "action": "pause"})
    assert response.status_code == 303, response.text
    assert db.execute("SELECT payouts_paused_reason FROM creators WHERE user_id = %s",
                      (p.creator_id,)).fetchone() == (reason,)
    p.run_scheduler()
    assert p.payouts() == []
    page = p.client.get("/creator/payouts")
    assert page.status_code == 200 and f"Payouts are paused: {reason}" in page.text

    response = post_form(admin, "/admin/payouts/pause", {"username": "maker", "reason": "Claim withdrawn",
                                                         "action": "resume"})
    assert response.status_code == 303
    # Stripe now wants a bank account again, and says so.
    p.onboard(account, ready=False)
    p.advance(7)
    p.run_scheduler()
    assert p.payouts() == []
    page = p.client.get("/creator/payouts")
    assert page.status_code == 200
    assert "Your payout account is not ready yet. Stripe still needs: a bank account or debit card" in page.text
    assert fake_stripe.received("POST", TRANSFERS) == []
    assert [(a, t, r) for _, a, t, r, _ in audit_rows(db)] == [
        ("payouts.pause", "creator:maker", reason), ("payouts.resume", "creator:maker", "Claim withdrawn")]

    p.onboard(account, ready=True)
    p.advance(7)
    p.run_scheduler()
    assert p.payouts() == [("paid", NET)]
    page = admin.get("/admin/payouts")
    assert page.status_code == 200 and "Nobody." in held_back_section(page.text)


def test_the_admin_queue_lists_creators_held_back_and_why(stripe_payouts, admin, db):
    p = stripe_payouts
    account = due_for_payout(p)
    reason = "Checking a copyright claim on Night Drive"
    assert post_form(admin, "/admin/payouts/pause", {"username": "maker", "reason": reason,
                                                     "action": "pause"}).status_code == 303
    page = admin.get("/admin/payouts")
    assert page.status_code == 200
    held = held_back_section(page.text)
    assert "@maker" in held and f"paused: {reason}" in held and "$19.12" in held

    assert post_form(admin, "/admin/payouts/pause", {"username": "maker", "reason": "Claim withdrawn",
                                                     "action": "resume"}).status_code == 303
    p.onboard(account, ready=False)
    page = admin.get("/admin/payouts")
    assert page.status_code == 200
    held = held_back_section(page.text)
    assert "@maker" in held and "the payout account cannot receive payouts yet" in held


def test_an_admin_retries_a_payout_waiting_out_its_back_off(stripe_payouts, admin, fake_stripe, db):
    p = stripe_payouts
    due_for_payout(p)
    fake_stripe.fail_next(3, 500)
    p.run_scheduler()
    payout = p.payout()
    assert payout["state"] == "scheduled" and p.seconds_until_due() > 40
    retry = f"/admin/payouts/{payout['public_id']}/retry"

    assert post_form(p.client, retry, {"reason": "let me"}).status_code == 403  # not an admin
    assert post_form(admin, retry, {"reason": "  "}).status_code in (400, 422)  # no reason given
    assert p.seconds_until_due() > 40 and audit_rows(db) == []

    response = post_form(admin, retry, {"reason": "Stripe is back"})
    assert response.status_code == 303 and response.headers["location"] == "/admin/payouts"
    assert p.seconds_until_due() <= 0
    assert audit_rows(db) == [(admin_id(db), "payout.retry", f"payout:{payout['public_id']}", "Stripe is back",
                               {"state": "scheduled"})]
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'payouts.send' AND state = 'queued'").fetchone()[0] > 0
    run_jobs(p.settings)
    payout = p.payout()
    assert payout["state"] == "paid" and payout["attempts"] == 2
    assert len(fake_stripe.transfers) == 1

    # A paid payout can be neither canceled nor retried; nothing changes.
    entries = p.entries()
    for action in ("cancel", "retry"):
        response = post_form(admin, f"/admin/payouts/{payout['public_id']}/{action}", {"reason": "oops"})
        assert response.status_code == 409
    assert p.payout()["state"] == "paid" and p.entries() == entries and len(audit_rows(db)) == 1
    assert post_form(admin, "/admin/payouts/nosuchpayout0000/retry", {"reason": "x"}).status_code == 404


def test_an_admin_cancels_a_scheduled_payout_and_the_money_returns(stripe_payouts, admin, fake_stripe, db):
    p = stripe_payouts
    due_for_payout(p)
    fake_stripe.fail_next(3, 500)
    p.run_scheduler()
    payout = p.payout()
    cancel = f"/admin/payouts/{payout['public_id']}/cancel"
    assert post_form(p.client, cancel, {"reason": "mine"}).status_code == 403
    assert post_form(admin, cancel, {}).status_code in (400, 422)
    assert p.payout()["state"] == "scheduled"

    response = post_form(admin, cancel, {"reason": "The creator asked us to wait"})
    assert response.status_code == 303
    payout = p.payout()
    assert payout["state"] == "canceled" and payout["canceled_at"] is not None
    assert payout["failure_reason"] == "Canceled by Fairshelf: The creator asked us to wait"
    assert p.entries() == [("sale", NET), ("payout", -NET), ("payout_reversal", NET)]
    assert p.balance() == (NET, NET)
    assert audit_rows(db) == [(admin_id(db), "payout.cancel", f"payout:{payout['public_id']}",
                               "The creator asked us to wait", {"amount_cents": NET})]

    assert post_form(admin, cancel, {"reason": "again"}).status_code == 409
    p.make_due()
    p.send()
    assert p.payout()["state"] == "canceled" and len(fake_stripe.received("POST", TRANSFERS)) == 3
    assert len(audit_rows(db)) == 1


def test_canceling_a_payout_whose_transfer_stripe_made_does_not_pay_twice(stripe_payouts, admin, fake_stripe, db):
    p = stripe_payouts
    account = due_for_payout(p)
    # The first attempt reaches Stripe, which makes the transfer; the answer is lost and the retries fail.
    held = fake_stripe.hold_after("POST", TRANSFERS)
    release_into_faults(fake_stripe, held, 2)
    p.run_scheduler()
    assert p.payout()["state"] == "scheduled" and len(fake_stripe.transfers) == 1
    # The admin sees a payout retrying and cancels it; Stripe has made its transfer all the same.
    post_form(admin, f"/admin/payouts/{p.payout()['public_id']}/cancel", {"reason": "Looks stuck"})
    p.advance(7)
    p.run_scheduler()
    sent = sum(t["amount"] for t in fake_stripe.transfers.values() if t["destination"] == account)
    assert sent == NET  # the creator earned NET and receives it once
    assert p.balance() == (0, 0)  # and the ledger agrees with what Stripe sent


def test_an_adjustment_submitted_twice_is_written_once_and_the_audit_log_is_append_only(stripe_payouts, admin, db):
    p = stripe_payouts
    page = admin.get("/admin/payouts")
    assert page.status_code == 200
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page.text).group(1)
    form = {"username": "maker", "amount": "12.50", "reason": "Goodwill credit for the outage", "nonce": nonce}

    assert post_form(p.client, "/admin/payouts/adjust", form).status_code == 403
    assert post_form(admin, "/admin/payouts/adjust", {**form, "reason": ""}).status_code in (400, 422)
    assert post_form(admin, "/admin/payouts/adjust", {**form, "nonce": "short"}).status_code in (400, 422)
    assert p.entries() == []
    for _ in range(2):
        assert post_form(admin, "/admin/payouts/adjust", form).status_code == 303
    assert p.entries() == [("adjustment", 1250)]
    assert db.execute("SELECT actor_id, memo, key FROM ledger_entries").fetchone() == (
        admin_id(db), "Goodwill credit for the outage", f"adjustment:{nonce}")
    assert audit_rows(db) == [(admin_id(db), "ledger.adjust", "creator:maker", "Goodwill credit for the outage",
                               {"amount_cents": 1250})]

    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        db.execute("UPDATE audit_log SET reason = 'nothing to see'")
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        db.execute("DELETE FROM audit_log")
    assert len(audit_rows(db)) == 1
