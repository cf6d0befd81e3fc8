"""Buying end to end over HTTP: checkout through the real routes, the processor's event through the real webhook
endpoint and worker, then access, the library, receipts and refunds."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.checkout import stripe_events
from tests.checkout.conftest import location_path, order_row
from tests.conftest import last_email, post_form


def test_a_fan_buys_an_item_and_gets_it(shop, fan, db, settings):
    item = shop.item_id
    assert fan.get(f"/i/{item}/stream", follow_redirects=False).status_code == 403
    assert "Buy for $4.99" in fan.get(f"/i/{item}").text
    order_id = shop.start(fan)
    order = order_row(db, order_id)
    assert order["state"] == "pending" and order["amount_cents"] == 499 and order["buyer_email"] == "fan@example.com"
    assert order["checkout_session_id"].startswith("cs_dev_")
    # Back from the processor before its webhook: the order page says it is confirming.
    assert "Confirming your payment" in fan.get(f"/orders/{order_id}").text

    paid = shop.pay(order_id, db, fan)
    assert paid["state"] == "paid" and paid["payment_intent_id"] == "pi_" + order_id
    page = fan.get(f"/orders/{order_id}").text
    assert "Payment received" in page and "/library" in page
    library = fan.get("/library").text
    assert "Night Drive" in library and "bought for $4.99" in library
    stream = fan.get(f"/i/{item}/stream", follow_redirects=False)
    assert stream.status_code == 302 and urlsplit(stream.headers["location"]).path.startswith("/media/")
    download = fan.get(f"/i/{item}/download", follow_redirects=False)
    assert download.status_code == 302
    assert fan.get(location_path(download)).headers["content-disposition"].startswith("attachment")
    assert "In your <a href=\"/library\">library</a>" in fan.get(f"/i/{item}").text
    assert db.execute("SELECT sales_count, recent_sales FROM items WHERE public_id = %s", (item,)).fetchone() == (1, 1)
    assert "Night Drive" in last_email(db, "fan@example.com", "receipt")
    assert "$4.99" in last_email(db, "maker@example.com", "sale")


def test_the_creator_refunds_a_sale_and_access_ends(shop, fan, db, settings):
    order_id = shop.start(fan)
    shop.pay(order_id, db, fan)
    sales = shop.creator.client.get("/creator/sales").text
    assert "fan@example.com" in sales and "$4.99" in sales
    # The development processor posts its refund event over HTTP; here the test delivers Stripe's event itself.
    refunded = stripe_events.event("charge.refunded", stripe_events.charge(order_id, 499, payment_intent="pi_" + order_id,
                                                                          refunded=499))
    assert stripe_events.deliver(fan, refunded, settings.webhook_secret).status_code == 200
    from tests.catalog.conftest import run_jobs

    run_jobs(settings)
    assert order_row(db, order_id)["state"] == "refunded"
    assert fan.get(f"/i/{shop.item_id}/stream", follow_redirects=False).status_code == 403
    assert "Night Drive" not in fan.get("/library").text
    assert db.execute("SELECT kind, amount_cents FROM order_reversals").fetchall() == [("refund", 499)]


def test_pay_what_you_want_is_checked_against_the_minimum(shop, visitor, db):
    creator = shop.creator.client
    post_form(creator, f"/creator/items/{shop.item_id}/pricing",
              {"price_mode": "pwyw", "min_price": "3", "suggested_price": "5"})
    too_little = post_form(visitor, f"/i/{shop.item_id}/buy", {"amount": "2.50", "email": "anon@example.com"})
    assert too_little.status_code == 422 and "The least you can pay is $3.00" in too_little.text
    junk = post_form(visitor, f"/i/{shop.item_id}/buy", {"amount": "lots", "email": "not-an-email"})
    assert junk.status_code == 422 and "Enter an amount" in junk.text and "valid email" in junk.text
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    ok = post_form(visitor, f"/i/{shop.item_id}/buy", {"amount": "7.25", "email": "anon@example.com"})
    assert ok.status_code == 303
    assert db.execute("SELECT amount_cents, buyer_id FROM orders").fetchone() == (725, None)
