"""The webhook endpoint's conformance: every event type we handle for purchases, delivered the way Stripe delivers
(again and again, in any order), through the real endpoint and the real worker. Tier billing's events are in
test_billing_events.py, refused deliveries in test_webhook_refusals.py.

Assertions are on what the database holds and what people see: the order's state, access to the file (the stream
link answers 302 to an owner, 403 to everyone else), the library, the emails sent and the money reversed.
"""

from __future__ import annotations

import itertools
import random
import secrets
from dataclasses import dataclass

import psycopg
import pytest
from litestar.testing import TestClient

from tests.checkout import stripe_events
from tests.checkout.conftest import Shop, order_row, settle_everything
from tests.conftest import post_form

# --- Helpers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """An order started through the real buy route, and the processor's events about it in Stripe's shape."""

    order_id: str
    session_id: str
    amount: int
    email: str

    @property
    def intent(self) -> str:
        return "pi_" + self.order_id

    def session_event(self, kind: str = "completed", *, payment_status: str = "paid", status: str = "complete",
                      amount: int | None = None, currency: str = "usd") -> dict:
        # An expired session never got as far as a PaymentIntent (Stripe creates them when the buyer pays).
        intent = None if status == "expired" else self.intent
        obj = stripe_events.session(self.order_id, self.amount if amount is None else amount,
                                    session_id=self.session_id, payment_intent=intent,
                                    payment_status=payment_status, status=status, email=self.email,
                                    currency=currency)
        return stripe_events.event(f"checkout.session.{kind}", obj)

    def refunded(self, total_refunded: int) -> dict:
        """charge.refunded carries the charge, whose amount_refunded is the running total of its refunds."""
        return stripe_events.event("charge.refunded", stripe_events.charge(
            self.order_id, self.amount, payment_intent=self.intent, refunded=total_refunded))

    def dispute(self, kind: str, status: str, amount: int | None = None) -> dict:
        return stripe_events.event(f"charge.dispute.{kind}", stripe_events.dispute(
            self.amount if amount is None else amount, payment_intent=self.intent, status=status))


def buy(shop: Shop, browser: TestClient, db: psycopg.Connection, **form: str) -> Purchase:
    order_id = shop.start(browser, **form)
    row = order_row(db, order_id)
    return Purchase(order_id, row["checkout_session_id"], row["amount_cents"], row["buyer_email"])


@pytest.fixture
def bought(shop: Shop, fan: TestClient, db: psycopg.Connection) -> Purchase:
    """The signed-in fan's $4.99 order, started and not yet paid."""
    return buy(shop, fan, db)


def sees(browser: TestClient, shop: Shop) -> tuple[int, bool]:
    """What the buyer gets: the stream link's status, and whether the item is in their library."""
    stream = browser.get(f"/i/{shop.item_id}/stream", follow_redirects=False).status_code
    return stream, "Night Drive" in browser.get("/library").text


OWNS, LOCKED_OUT = (302, True), (403, False)


def emails(db: psycopg.Connection, template: str, to: str | None = None) -> int:
    return db.execute("SELECT count(*) FROM emails WHERE template = %s AND (%s::text IS NULL OR to_address = %s)",
                      (template, to, to)).fetchone()[0]


def reversals(db: psycopg.Connection, order_id: str) -> list[tuple[str, int]]:
    return db.execute("SELECT r.kind, r.amount_cents FROM order_reversals r JOIN orders o ON o.id = r.order_id "
                      "WHERE o.public_id = %s ORDER BY r.id", (order_id,)).fetchall()


def state_of(db: psycopg.Connection, order_id: str) -> str:
    return order_row(db, order_id)["state"]


def job_of(db: psycopg.Connection, payload: dict) -> tuple[str, int, bool]:
    """The processing job of a stored event: its state, attempts, and whether a back-off put it off (its next run
    at least a second after it was enqueued)."""
    rows = db.execute(
        "SELECT j.state, j.attempts, j.run_at >= j.created_at + interval '1 second' FROM jobs j "
        "JOIN payment_events e "
        "ON j.payload->>'event_id' = e.id::text WHERE j.kind = 'checkout.process_event' AND e.stripe_id = %s",
        (payload["id"],)).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


# --- Every type we handle, each delivered ten times (Stripe retries until it gets a 2xx) ---------------------


def test_a_paid_completion_grants_access_once_however_often_it_comes(shop, fan, bought, inbox, db):
    assert sees(fan, shop) == LOCKED_OUT
    completed = bought.session_event()
    inbox.deliver(completed, times=10)
    assert state_of(db, bought.order_id) == "pending"  # acknowledged and stored; the worker applies it
    inbox.process()
    inbox.deliver(completed, times=3, new=False)  # the processor retrying after we processed it
    inbox.process()

    assert inbox.state(completed) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "paid" and order["payment_intent_id"] == bought.intent and order["paid_at"]
    assert sees(fan, shop) == OWNS
    assert emails(db, "receipt", "fan@example.com") == 1 and emails(db, "sale", "maker@example.com") == 1
    assert inbox.count() == 1 and db.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM entitlements WHERE revoked_at IS NULL").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'checkout.process_event'").fetchone() == (1,)


def test_a_delayed_payment_that_succeeds(shop, fan, bought, inbox, db):
    # A bank debit: the session completes unpaid, and the money arrives days later.
    unpaid = bought.session_event(payment_status="unpaid")
    inbox.deliver(unpaid, times=10)
    inbox.process()
    assert inbox.state(unpaid) == ("processed", "")
    assert state_of(db, bought.order_id) == "pending"
    assert sees(fan, shop) == LOCKED_OUT and emails(db, "receipt") == 0

    succeeded = bought.session_event("async_payment_succeeded")
    inbox.deliver(succeeded, times=10)
    inbox.process()
    assert inbox.state(succeeded) == ("processed", "")
    assert state_of(db, bought.order_id) == "paid"
    assert sees(fan, shop) == OWNS
    assert emails(db, "receipt") == 1 and emails(db, "sale") == 1


def test_a_delayed_payment_that_fails(shop, fan, bought, inbox, db):
    unpaid = bought.session_event(payment_status="unpaid")
    failed = bought.session_event("async_payment_failed", payment_status="unpaid")
    for payload in (unpaid, failed):
        inbox.deliver(payload, times=10)
        inbox.process()
        assert inbox.state(payload) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "failed" and order["failed_at"] and order["paid_at"] is None
    assert sees(fan, shop) == LOCKED_OUT
    assert emails(db, "receipt") == 0 and emails(db, "sale") == 0


def test_an_expired_session_ends_the_order(shop, fan, bought, inbox, db):
    expired = bought.session_event("expired", payment_status="unpaid", status="expired")
    inbox.deliver(expired, times=10)
    inbox.process()
    assert inbox.state(expired) == ("processed", "")
    assert state_of(db, bought.order_id) == "expired"
    assert sees(fan, shop) == LOCKED_OUT
    assert emails(db, "receipt") == 0 and emails(db, "sale") == 0


def test_a_partial_refund_keeps_access_and_a_full_refund_ends_it(shop, fan, bought, inbox, db):
    inbox.deliver(bought.session_event())
    inbox.process()

    partial = bought.refunded(200)
    inbox.deliver(partial, times=10)
    inbox.process()
    assert inbox.state(partial) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "paid" and order["amount_refunded_cents"] == 200
    assert sees(fan, shop) == OWNS
    assert reversals(db, bought.order_id) == [("refund", 200)]

    # The rest refunded: the charge's running total reaches the amount paid.
    full = bought.refunded(499)
    inbox.deliver(full, times=10)
    inbox.process()
    assert inbox.state(full) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "refunded" and order["amount_refunded_cents"] == 499
    assert sees(fan, shop) == LOCKED_OUT
    assert reversals(db, bought.order_id) == [("refund", 200), ("refund", 299)]
    assert emails(db, "receipt") == 1


def test_a_dispute_revokes_access_and_winning_it_restores_it(shop, fan, bought, inbox, db):
    inbox.deliver(bought.session_event())
    inbox.process()

    created = bought.dispute("created", "needs_response")
    inbox.deliver(created, times=10)
    inbox.process()
    assert inbox.state(created) == ("processed", "")
    assert state_of(db, bought.order_id) == "disputed"
    assert sees(fan, shop) == LOCKED_OUT
    assert reversals(db, bought.order_id) == [("dispute", 499)]

    won = bought.dispute("closed", "won")
    inbox.deliver(won, times=10)
    inbox.process()
    assert inbox.state(won) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "paid" and order["dispute_status"] == "won"
    assert sees(fan, shop) == OWNS
    assert reversals(db, bought.order_id) == [("dispute", 499), ("dispute_won", 499)]
    assert emails(db, "receipt") == 1  # access came back; nobody is told they bought it again


def test_a_lost_dispute_ends_access_for_good(shop, fan, bought, inbox, db):
    inbox.deliver(bought.session_event())
    inbox.process()
    for payload in (bought.dispute("created", "needs_response"), bought.dispute("closed", "lost")):
        inbox.deliver(payload, times=10)
        inbox.process()
        assert inbox.state(payload) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "dispute_lost" and order["dispute_status"] == "lost"
    assert sees(fan, shop) == LOCKED_OUT
    assert reversals(db, bought.order_id) == [("dispute", 499)]


# --- Events overtaking each other --------------------------------------------------------------------------------


def test_a_refund_that_overtakes_the_completion(shop, fan, bought, inbox, db):
    refunded = bought.refunded(499)
    inbox.deliver(refunded)
    inbox.process()
    # The charge names the order (its transfer group), so the refund is recorded on the order still pending.
    assert inbox.state(refunded) == ("processed", "")
    assert state_of(db, bought.order_id) == "pending"

    inbox.deliver(bought.session_event())
    inbox.process()
    assert state_of(db, bought.order_id) == "refunded"
    assert sees(fan, shop) == LOCKED_OUT
    assert reversals(db, bought.order_id) == [("refund", 499)]
    assert emails(db, "receipt") == 0 and emails(db, "sale") == 0
    assert db.execute("SELECT sales_count FROM items").fetchone() == (0,)


def test_a_dispute_that_overtakes_the_completion_is_retried(shop, fan, bought, inbox, db):
    created = bought.dispute("created", "needs_response")
    inbox.deliver(created)
    inbox.process()
    # The dispute names only the payment intent, which the order learns from the completion: not known yet.
    state, error = inbox.state(created)
    assert state == "failed" and error.startswith("NotYetKnown:") and bought.intent in error
    assert job_of(db, created) == ("queued", 1, True)  # waiting out its back-off
    # Hold the retry back until the completion is in, so the order below is certain (its back-off is 1 to 2 s).
    db.execute("UPDATE jobs SET run_at = now() + interval '1 hour' WHERE state = 'queued'")

    inbox.deliver(bought.session_event())
    inbox.process()
    assert state_of(db, bought.order_id) == "paid" and inbox.state(created)[0] == "failed"

    inbox.process(retries=True)
    assert inbox.state(created) == ("processed", "")
    assert job_of(db, created)[:2] == ("done", 2)
    assert state_of(db, bought.order_id) == "disputed"
    assert sees(fan, shop) == LOCKED_OUT
    assert reversals(db, bought.order_id) == [("dispute", 499)]


def test_a_dispute_closed_before_it_was_opened(shop, fan, bought, inbox, db):
    inbox.deliver(bought.session_event())
    inbox.process()
    won, created = bought.dispute("closed", "won"), bought.dispute("created", "needs_response")
    for payload in (won, created):
        inbox.deliver(payload)
        inbox.process()
        assert inbox.state(payload) == ("processed", "")
    order = order_row(db, bought.order_id)
    assert order["state"] == "paid" and order["dispute_status"] == "won"
    assert sees(fan, shop) == OWNS
    assert reversals(db, bought.order_id) == [("dispute", 499), ("dispute_won", 499)]


def test_any_order_of_a_purchases_events_ends_the_same(shop, visitor, inbox, db):
    """A purchase partly refunded, then disputed for the rest and the dispute won, in random delivery orders."""
    def events(p: Purchase) -> list[dict]:
        return [p.session_event(), p.refunded(200), p.dispute("created", "needs_response", amount=299),
                p.dispute("closed", "won", amount=299)]

    orders = list(itertools.permutations(range(4)))
    chosen = [orders[0], *random.Random(20260314).sample(orders[1:], 5)]  # the natural order, and five others
    for n, order in enumerate(chosen):
        purchase = buy(shop, visitor, db, email=f"buyer{n}@example.com")
        payloads = events(purchase)
        for i in order:  # processed as delivered: the worker runs after each delivery
            inbox.deliver(payloads[i])
            inbox.process()
        settle_everything(inbox, db)

        why = f"delivered in order {order}"
        assert all(inbox.state(p) == ("processed", "") for p in payloads), why
        row = order_row(db, purchase.order_id)
        assert (row["state"], row["amount_refunded_cents"], row["dispute_status"]) == ("paid", 200, "won"), why
        assert sorted(reversals(db, purchase.order_id)) == [("dispute", 299), ("dispute_won", 299),
                                                            ("refund", 200)], why
        assert db.execute("SELECT count(*) FROM entitlements WHERE order_id = %s AND revoked_at IS NULL",
                          (row["id"],)).fetchone() == (1,), why
        assert emails(db, "receipt", purchase.email) == 1, why
    assert db.execute("SELECT sales_count FROM items").fetchone() == (len(chosen),)
    assert emails(db, "sale") == len(chosen)


# --- The admin's page of events ------------------------------------------------------------------------------------


def event_id(db: psycopg.Connection, payload: dict) -> int:
    return db.execute("SELECT id FROM payment_events WHERE stripe_id = %s", (payload["id"],)).fetchone()[0]


def test_an_admin_sees_events_and_runs_a_failed_one_again(shop, fan, inbox, db):
    admin = shop.creator.client
    db.execute("UPDATE users SET is_admin = true WHERE username = 'maker'")
    # A dispute about a payment no order knows yet: it fails (and would keep retrying with back-off).
    intent = "pi_" + secrets.token_hex(8)
    dispute = stripe_events.event("charge.dispute.created", stripe_events.dispute(
        499, payment_intent=intent, status="needs_response"))
    inbox.deliver(dispute)
    inbox.process()
    assert inbox.state(dispute)[0] == "failed"
    db.execute("UPDATE jobs SET run_at = now() + interval '1 hour' WHERE state = 'queued'")  # only the admin's run

    page = admin.get("/admin/payments")
    assert page.status_code == 200
    assert dispute["id"] in page.text and "charge.dispute.created" in page.text
    assert "badge-failed" in page.text and f"no order for payment {intent} yet" in page.text
    assert "Run again" in page.text
    assert dispute["id"] not in admin.get("/admin/payments?state=processed").text
    assert dispute["id"] in admin.get("/admin/payments?state=failed").text

    # The order it is about turns up (its completion names that payment intent) …
    purchase = buy(shop, fan, db)
    completed = purchase.session_event()
    completed["data"]["object"]["payment_intent"] = intent
    inbox.deliver(completed)
    inbox.process()
    assert state_of(db, purchase.order_id) == "paid"
    # … and the admin runs the dispute again.
    retried = post_form(admin, f"/admin/payments/{event_id(db, dispute)}/retry", {})
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/payments"
    assert inbox.state(dispute) == ("received", "")
    inbox.process()
    assert inbox.state(dispute) == ("processed", "")
    assert state_of(db, purchase.order_id) == "disputed"
    assert sees(fan, shop) == LOCKED_OUT
    assert "badge-processed" in admin.get("/admin/payments").text

    # Only a failed event can be run again.
    again = post_form(admin, f"/admin/payments/{event_id(db, dispute)}/retry", {})
    assert again.status_code == 409
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'checkout.process_event' AND state = 'queued'"
                      ).fetchone() == (1,)  # just the automatic retry held back above


def test_only_admins_see_payment_events(fan, visitor, inbox, db):
    payload = stripe_events.unrelated_completion()
    inbox.deliver(payload)
    inbox.process()
    pk = event_id(db, payload)
    assert fan.get("/admin/payments").status_code == 403
    assert post_form(fan, f"/admin/payments/{pk}/retry", {}).status_code == 403
    anonymous = visitor.get("/admin/payments", follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login?next=/admin/payments")
    assert post_form(visitor, f"/admin/payments/{pk}/retry", {}).status_code == 303  # to the login page
    assert inbox.state(payload) == ("ignored", "")


# --- The amount check -----------------------------------------------------------------------------------------------


def test_a_completion_for_another_amount_leaves_the_order_unpaid(shop, fan, inbox, db):
    short, euros, elsewhere = buy(shop, fan, db), buy(shop, fan, db), buy(shop, fan, db)
    other_session = Purchase(elsewhere.order_id, "cs_" + secrets.token_hex(12), 499, elsewhere.email)
    wrong = {short: short.session_event(amount=100), euros: euros.session_event(currency="eur"),
             # The right order and amount, but a session the order was never given.
             elsewhere: other_session.session_event()}
    for payload in wrong.values():
        inbox.deliver(payload)
    inbox.process()

    errors = {purchase.order_id: inbox.state(payload) for purchase, payload in wrong.items()}
    assert errors == {
        short.order_id: ("failed", f"contract: order {short.order_id} is for 499 USD, the session charged 100 usd"),
        euros.order_id: ("failed", f"contract: order {euros.order_id} is for 499 USD, the session charged 499 eur"),
        elsewhere.order_id: ("failed", f"contract: order {elsewhere.order_id} belongs to session "
                                       f"{elsewhere.session_id}, not {other_session.session_id}"),
    }
    for purchase, payload in wrong.items():
        assert job_of(db, payload)[:2] == ("failed", 1)  # not retried: a person has to look at it
        order = order_row(db, purchase.order_id)
        assert order["state"] == "pending" and order["paid_at"] is None and order["payment_intent_id"] is None
    assert sees(fan, shop) == LOCKED_OUT
    assert db.execute("SELECT count(*) FROM entitlements").fetchone() == (0,)
    assert emails(db, "receipt") == 0 and emails(db, "sale") == 0
