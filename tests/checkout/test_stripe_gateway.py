"""The Stripe gateway for real: the app's routes, its StripeGateway and the official `stripe` client over HTTPX,
talking to a local server that speaks Stripe's wire format (tests/checkout/fake_stripe.py) and records what it
was sent. Nothing of the app or the client library is mocked; only the library's retry back-off is shortened."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from stripe._http_client import HTTPClient

from app.checkout.contract import API_VERSION
from app.settings import Settings
from tests.catalog.conftest import other_browser, run_jobs
from tests.checkout import stripe_events
from tests.checkout.conftest import STRIPE_SECRET_KEY, Shop, order_of_last, order_row
from tests.checkout.fake_stripe import FakeStripe, nest
from tests.conftest import post_form

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client library waits 0.5 s and more between its retries; the tests need not."""
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def buy(shop: Shop, browser, **form: str):  # type: ignore[no-untyped-def]
    return post_form(browser, f"/i/{shop.item_id}/buy", form)


def assert_nothing_charged(response, db, settings: Settings) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    assert "nothing was charged" in response.text
    order_id = order_of_last(settings)
    order = order_row(db, order_id)
    assert order["state"] == "pending" and order["checkout_session_id"] is None
    return order_id


# --- The fake itself

def test_bracket_notation_nests_like_stripe_reads_it():
    pairs = [("mode", "payment"), ("line_items[0][quantity]", "1"),
             ("line_items[0][price_data][unit_amount]", "499"), ("line_items[1][quantity]", "2"),
             ("metadata[order_id]", "o1"), ("expand[]", "a"), ("expand[]", "b")]
    assert nest(pairs) == {"mode": "payment", "metadata": {"order_id": "o1"}, "expand": ["a", "b"],
                           "line_items": [{"quantity": "1", "price_data": {"unit_amount": "499"}},
                                          {"quantity": "2"}]}


# --- Buying

def test_buying_sends_the_buyer_to_a_stripe_checkout_session(stripe_shop, stripe_fan, fake_stripe, db):
    response = buy(stripe_shop, stripe_fan)
    assert response.status_code == 303, response.text
    sent = fake_stripe.last("POST", SESSIONS)
    assert sent.status == 200 and sent.response is not None
    session = sent.response
    assert session["id"].startswith("cs_test_")
    assert response.headers["location"] == session["url"]

    order_id = order_of_last(stripe_shop.settings)
    item = stripe_shop.item_id
    form = sent.form
    assert form["mode"] == "payment"
    assert form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][unit_amount]"] == "499"
    assert "Night Drive" in form["line_items[0][price_data][product_data][name]"]
    assert form["customer_email"] == "fan@example.com"
    assert form["client_reference_id"] == order_id
    assert form["metadata[order_id]"] == order_id
    assert form["payment_intent_data[transfer_group]"] == order_id
    assert form["payment_intent_data[metadata][order_id]"] == order_id
    assert form["success_url"] == f"http://testserver.local/orders/{order_id}?session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"] == f"http://testserver.local/i/{item}/buy?canceled=1"
    assert sent.params()["line_items"][0]["price_data"]["product_data"]["name"].startswith("Night Drive")
    assert sent.idempotency_key == f"checkout-{order_id}"
    assert sent.stripe_version == API_VERSION
    assert sent.authorization == f"Bearer {STRIPE_SECRET_KEY}"
    assert len(fake_stripe.received()) == 1  # one call, no retries

    # The session Stripe answered with is echoed back as the processor saw it, and the order remembers it.
    assert (session["mode"], session["amount_total"], session["currency"]) == ("payment", 499, "usd")
    assert session["metadata"] == {"order_id": order_id} and session["payment_intent"] is None
    order = order_row(db, order_id)
    assert order["state"] == "pending" and order["checkout_session_id"] == session["id"]
    assert order["amount_cents"] == 499 and order["livemode"] is False

    # Stripe's completion event for that session settles the order.
    paid = stripe_shop.pay(order_id, db, stripe_fan)
    assert paid["state"] == "paid" and paid["payment_intent_id"] == "pi_" + order_id


def test_pay_what_you_want_reaches_stripe_as_the_unit_amount(stripe_shop, stripe_settings, fake_stripe, db):
    assert post_form(stripe_shop.creator.client, f"/creator/items/{stripe_shop.item_id}/pricing",
                     {"price_mode": "pwyw", "min_price": "3", "suggested_price": "5"}).status_code == 303
    with other_browser(stripe_settings) as visitor:
        too_little = buy(stripe_shop, visitor, amount="2.50", email="anon@example.com")
        assert too_little.status_code == 422
        assert fake_stripe.received() == []  # a refused form never reaches the processor
        response = buy(stripe_shop, visitor, amount="7.25", email="Anon@Example.com")
    assert response.status_code == 303, response.text
    sent = fake_stripe.last("POST", SESSIONS)
    assert sent.form["line_items[0][price_data][unit_amount]"] == "725"
    assert sent.form["customer_email"] == "anon@example.com"
    assert sent.response is not None and sent.response["amount_total"] == 725
    assert db.execute("SELECT amount_cents, buyer_id FROM orders").fetchone() == (725, None)


# --- When Stripe cannot be reached

@pytest.mark.parametrize("fault", [500, "close"])
def test_stripe_failing_every_attempt_tells_the_buyer_nothing_was_charged(stripe_shop, stripe_fan, fake_stripe, db,
                                                                         fault):
    fake_stripe.fail_next(3, fault)  # the first try and the client's two retries
    response = buy(stripe_shop, stripe_fan)
    order_id = assert_nothing_charged(response, db, stripe_shop.settings)
    attempts = fake_stripe.received("POST", SESSIONS)
    assert len(attempts) == 3
    assert {a.idempotency_key for a in attempts} == {f"checkout-{order_id}"}


def test_stripe_rate_limiting_tells_the_buyer_nothing_was_charged(stripe_shop, stripe_fan, fake_stripe, db):
    fake_stripe.fail_next(3, 429)
    response = buy(stripe_shop, stripe_fan)
    order_id = assert_nothing_charged(response, db, stripe_shop.settings)
    attempts = fake_stripe.received("POST", SESSIONS)
    assert attempts and all(a.status == 429 for a in attempts)
    assert {a.idempotency_key for a in attempts} == {f"checkout-{order_id}"}


def test_stripe_refusing_connections_tells_the_buyer_nothing_was_charged(stripe_shop, stripe_settings, closed_port,
                                                                         fake_stripe, db):
    unreachable = stripe_settings.with_(stripe_api_base=f"http://127.0.0.1:{closed_port}")
    with other_browser(unreachable) as visitor:
        response = buy(stripe_shop, visitor, email="anon@example.com")
    assert_nothing_charged(response, db, stripe_settings)
    assert fake_stripe.received() == []


@pytest.mark.parametrize("fault", [500, "close"])
def test_a_transient_failure_is_retried_with_the_same_idempotency_key(stripe_shop, stripe_fan, fake_stripe, db,
                                                                      fault):
    fake_stripe.fail_next(1, fault)
    response = buy(stripe_shop, stripe_fan)
    assert response.status_code == 303, response.text
    order_id = order_of_last(stripe_shop.settings)
    first, second = fake_stripe.received("POST", SESSIONS)
    assert first.status == (500 if fault == 500 else None) and second.status == 200
    assert first.idempotency_key == second.idempotency_key == f"checkout-{order_id}"
    assert first.pairs == second.pairs
    assert second.response is not None
    assert response.headers["location"] == second.response["url"]
    assert order_row(db, order_id)["checkout_session_id"] == second.response["id"]


def test_the_fake_replays_a_repeated_idempotency_key_like_stripe(fake_stripe):
    """What the tests above rely on: the same key gives back the same object; other parameters are refused."""
    import httpx

    headers = {"Authorization": f"Bearer {STRIPE_SECRET_KEY}", "Idempotency-Key": "checkout-o1"}
    body = {"mode": "payment", "line_items[0][quantity]": "1", "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": "499", "success_url": "https://x/ok"}
    with httpx.Client(base_url=fake_stripe.url) as http:
        first = http.post(SESSIONS, data=body, headers=headers)
        again = http.post(SESSIONS, data=body, headers=headers)
        other = http.post(SESSIONS, data={**body, "line_items[0][price_data][unit_amount]": "500"}, headers=headers)
        anonymous = http.post(SESSIONS, data=body)
        reused = http.delete("/v1/subscriptions/sub_nope", headers=headers)
        unknown = http.delete("/v1/subscriptions/sub_nope", headers={"Authorization": headers["Authorization"]})
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert reused.status_code == 400 and reused.json()["error"]["type"] == "idempotency_error"
    assert anonymous.status_code == 401
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "resource_missing"


# --- Refunds

def test_the_creator_refunds_a_sale_through_stripe(stripe_shop, stripe_fan, fake_stripe, db):
    assert buy(stripe_shop, stripe_fan).status_code == 303
    order_id = order_of_last(stripe_shop.settings)
    payment_intent = "pi_" + order_id
    assert stripe_shop.pay(order_id, db, stripe_fan)["state"] == "paid"
    fake_stripe.add_payment_intent(payment_intent, 499)
    creator = stripe_shop.creator.client

    response = post_form(creator, f"/creator/sales/{order_id}/refund", {})
    assert response.status_code == 303, response.text
    sent = fake_stripe.last("POST", "/v1/refunds")
    assert sent.status == 200 and sent.response is not None
    assert sent.form["payment_intent"] == payment_intent
    assert sent.form["reason"] == "requested_by_customer"
    assert sent.form["metadata[order_id]"] == order_id
    assert sent.idempotency_key == f"refund-{order_id}"
    assert sent.stripe_version == API_VERSION and sent.authorization == f"Bearer {STRIPE_SECRET_KEY}"
    # Access ends when Stripe confirms the refund (its event), not when it is asked for.
    order = order_row(db, order_id)
    assert order["state"] == "paid" and order["refund_requested_at"] is not None

    # A second click asks again with the same key: Stripe answers with the same refund, nothing is refunded twice.
    assert post_form(creator, f"/creator/sales/{order_id}/refund", {}).status_code == 303
    first, second = fake_stripe.received("POST", "/v1/refunds")
    assert second.idempotency_key == first.idempotency_key and second.pairs == first.pairs
    assert second.status == 200 and second.response == first.response
    assert fake_stripe.payment_intents[payment_intent]["refunded"] == 499

    refunded = stripe_events.event("charge.refunded", stripe_events.charge(
        order_id, 499, payment_intent=payment_intent, refunded=499))
    assert stripe_events.deliver(stripe_fan, refunded, stripe_shop.settings.webhook_secret).status_code == 200
    run_jobs(stripe_shop.settings)
    assert order_row(db, order_id)["state"] == "refunded"
    assert post_form(creator, f"/creator/sales/{order_id}/refund", {}).status_code == 409
    assert len(fake_stripe.received("POST", "/v1/refunds")) == 2


def test_a_refund_stripe_cannot_take_is_reported_and_can_be_clicked_again(stripe_shop, stripe_fan, fake_stripe, db):
    assert buy(stripe_shop, stripe_fan).status_code == 303
    order_id = order_of_last(stripe_shop.settings)
    stripe_shop.pay(order_id, db, stripe_fan)
    fake_stripe.add_payment_intent("pi_" + order_id, 499)
    creator = stripe_shop.creator.client
    fake_stripe.fail_next(3, 500)
    failed = post_form(creator, f"/creator/sales/{order_id}/refund", {})
    assert failed.status_code == 503, failed.text
    assert order_row(db, order_id)["state"] == "paid"
    assert post_form(creator, f"/creator/sales/{order_id}/refund", {}).status_code == 303
    attempts = fake_stripe.received("POST", "/v1/refunds")
    assert [a.status for a in attempts] == [500, 500, 500, 200]
    assert {a.idempotency_key for a in attempts} == {f"refund-{order_id}"}


def paid_sale_refund_failing(shop: Shop, fan, fake: FakeStripe, db):  # type: ignore[no-untyped-def]
    """A paid sale whose refund Stripe fails on every attempt; returns the order id and the creator's answer."""
    assert buy(shop, fan).status_code == 303
    order_id = order_of_last(shop.settings)
    shop.pay(order_id, db, fan)
    fake.add_payment_intent("pi_" + order_id, 499)
    fake.fail_next(3, 500)
    return order_id, post_form(shop.creator.client, f"/creator/sales/{order_id}/refund", {})


def test_a_failed_refund_can_be_retried_from_the_sales_page(stripe_shop, stripe_fan, fake_stripe, db):
    order_id, failed = paid_sale_refund_failing(stripe_shop, stripe_fan, fake_stripe, db)
    assert failed.status_code == 503
    page = stripe_shop.creator.client.get("/creator/sales").text
    assert f"/creator/sales/{order_id}/refund" in page and "Refund sent" not in page


def test_a_failed_refund_is_not_explained_as_nothing_charged(stripe_shop, stripe_fan, fake_stripe, db):
    _, failed = paid_sale_refund_failing(stripe_shop, stripe_fan, fake_stripe, db)
    assert failed.status_code == 503
    assert "nothing was charged or refunded" in failed.text  # not a promise about a charge alone


# --- Tier subscriptions

def creator_user_id(db) -> int:  # type: ignore[no-untyped-def]
    row = db.execute("SELECT id FROM users WHERE username = 'maker'").fetchone()
    assert row is not None
    return row[0]


def test_a_creator_subscribes_to_a_tier_through_stripe(stripe_shop, fake_stripe, db):
    creator = stripe_shop.creator.client
    response = post_form(creator, "/creator/billing/subscribe", {"tier": "small_files"})
    assert response.status_code == 303, response.text
    sent = fake_stripe.last("POST", SESSIONS)
    assert sent.response is not None and response.headers["location"] == sent.response["url"]
    user_id = str(creator_user_id(db))
    form = sent.form
    assert form["mode"] == "subscription"
    assert form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][recurring][interval]"] == "month"
    assert form["line_items[0][price_data][unit_amount]"] == "1000"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert "Small Files" in form["line_items[0][price_data][product_data][name]"]
    assert form["metadata[creator_id]"] == user_id and form["metadata[tier]"] == "small_files"
    assert form["subscription_data[metadata][creator_id]"] == user_id
    assert form["subscription_data[metadata][tier]"] == "small_files"
    assert form["client_reference_id"] == f"creator-{user_id}"
    assert form["customer_email"] == "maker@example.com" and "customer" not in form
    assert form["success_url"] == "http://testserver.local/creator/billing?paid=1"
    assert sent.idempotency_key is not None and sent.idempotency_key.startswith("tier-")
    assert sent.stripe_version == API_VERSION and sent.authorization == f"Bearer {STRIPE_SECRET_KEY}"
    assert sent.response["mode"] == "subscription" and sent.response["amount_total"] == 1000

    # Each click is its own attempt (its own key); a creator Stripe already knows is named as its customer.
    db.execute("UPDATE creators SET billing_customer_id = 'cus_maker' WHERE user_id = %s", (int(user_id),))
    assert post_form(creator, "/creator/billing/subscribe", {"tier": "big_files"}).status_code == 303
    again = fake_stripe.last("POST", SESSIONS)
    assert again.idempotency_key != sent.idempotency_key and again.idempotency_key.startswith("tier-")
    assert again.form["customer"] == "cus_maker" and "customer_email" not in again.form
    assert again.form["line_items[0][price_data][unit_amount]"] == "2000"


def test_an_unknown_tier_never_reaches_stripe(stripe_shop, fake_stripe):
    response = post_form(stripe_shop.creator.client, "/creator/billing/subscribe", {"tier": "platinum"})
    assert response.status_code == 422
    assert fake_stripe.received() == []


def subscription_completed(user_id: int, tier: str, subscription: str) -> dict:
    session = stripe_events.session("", 1000, session_id="cs_test_" + subscription, payment_intent=None,
                                    email="maker@example.com")
    session.update(mode="subscription", subscription=subscription, customer="cus_maker", client_reference_id=None,
                   metadata={"creator_id": str(user_id), "tier": tier})
    return stripe_events.event("checkout.session.completed", session)


@pytest.mark.parametrize("known", [True, False], ids=["active", "already-gone"])
def test_a_replaced_subscription_is_cancelled_at_stripe(stripe_shop, stripe_settings, fake_stripe, db, known):
    user_id = creator_user_id(db)
    if known:
        fake_stripe.add_subscription("sub_old", "cus_maker", creator_id=str(user_id), tier="small_files")
    for tier, subscription in (("small_files", "sub_old"), ("big_files", "sub_new")):
        event = subscription_completed(user_id, tier, subscription)
        assert stripe_events.deliver(stripe_shop.creator.client, event, stripe_settings.webhook_secret).status_code == 200
        run_jobs(stripe_settings)
    cancel = fake_stripe.last("DELETE", "/v1/subscriptions/sub_old")
    assert cancel.authorization == f"Bearer {STRIPE_SECRET_KEY}" and cancel.stripe_version == API_VERSION
    assert cancel.status == (200 if known else 404)
    if known:
        assert fake_stripe.subscriptions["sub_old"]["status"] == "canceled"
    assert fake_stripe.received("DELETE", "/v1/subscriptions/sub_new") == []
    assert db.execute("SELECT subscription_id, tier FROM creators WHERE user_id = %s",
                      (user_id,)).fetchone() == ("sub_new", "big_files")
    # Cancelling is done (a subscription Stripe no longer has counts as cancelled): no job is left failing.
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'checkout.cancel_subscription' "
                      "AND state <> 'done'").fetchone()[0] == 0


# --- No development processor

def test_with_stripe_configured_there_is_no_development_checkout(stripe_client, fake_stripe):
    assert stripe_client.get("/dev/checkout/anything").status_code == 404
    assert post_form(stripe_client, "/dev/checkout/anything/pay", {}).status_code in (403, 404, 405)
    assert fake_stripe.received() == []
