"""Tier billing over HTTP: subscribing through the development processor's checkout, the subscription's events
keeping the tier current, the grace period when a payment fails, and a downgrade over quota blocking new uploads
only."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from app.catalog.tiers import GB, TIERS
from tests.catalog.conftest import new_item, run_jobs, upload
from tests.catalog.upload_helpers import set_storage_used, user_id
from tests.checkout import stripe_events
from tests.conftest import post_form
from tests.media import samples


def subscription_events(creator_id: int, tier: str, *, sub: str = "sub_tier1", customer: str = "cus_tier1"):  # type: ignore[no-untyped-def]
    """What Stripe sends when a subscription Checkout completes (API version 2026-10-28)."""
    metadata = {"creator_id": str(creator_id), "tier": tier}
    session = {
        "id": "cs_tier_" + sub, "object": "checkout.session", "mode": "subscription", "status": "complete",
        "payment_status": "paid", "amount_total": TIERS[tier].monthly_cents, "currency": "usd",
        "customer": customer, "customer_details": {"email": "maker@example.com"}, "metadata": metadata,
        "payment_intent": None, "subscription": sub, "livemode": False,
    }
    subscription = {"id": sub, "object": "subscription", "customer": customer, "status": "active",
                    "metadata": metadata, "livemode": False}
    invoice = {"id": "in_" + sub, "object": "invoice", "customer": customer, "status": "paid",
               "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub}},
               "livemode": False}
    return session, subscription, invoice


def deliver_all(client, settings, *events) -> None:  # type: ignore[no-untyped-def]
    for event in events:
        assert stripe_events.deliver(client, event, settings.webhook_secret).status_code == 200
    run_jobs(settings)


def tier_of(db, username: str = "maker") -> tuple:  # type: ignore[no-untyped-def]
    return db.execute("SELECT tier, tier_status, subscription_id, billing_customer_id, past_due_since IS NOT NULL "
                      "FROM creators WHERE user_id = %s", (user_id(db, username),)).fetchone()


def test_subscribing_starts_at_the_development_checkout(creator):
    page = creator.client.get("/creator/billing").text
    assert "Not subscribed yet" in page and "$10.00" in page
    response = post_form(creator.client, "/creator/billing/subscribe", {"tier": "small_files"})
    assert response.status_code == 303
    checkout = creator.client.get(urlsplit(response.headers["location"]).path).text
    assert "Fairshelf Small Files tier" in checkout and "/month" in checkout and "Fail the next invoice" in checkout
    assert post_form(creator.client, "/creator/billing/subscribe", {"tier": "gold"}).status_code == 422


def test_the_tier_follows_the_subscription_and_a_late_payment_gets_grace(creator, db):
    client, settings = creator.client, creator.settings
    maker = user_id(db, "maker")
    session, subscription, invoice = subscription_events(maker, "big_files")
    now = int(time.time())
    deliver_all(client, settings, stripe_events.event("checkout.session.completed", session, created=now - 50),
                stripe_events.event("customer.subscription.created", subscription, created=now - 50),
                stripe_events.event("invoice.paid", invoice, created=now - 50))
    assert tier_of(db) == ("big_files", "active", "sub_tier1", "cus_tier1", False)
    assert "Your Big Files subscription is active" in client.get("/creator/billing").text
    assert "files up to 20 GB" in client.get("/creator").text

    # A payment fails: past due, and the tier stays for the grace period.
    failed = {**invoice, "id": "in_failed", "status": "open"}
    deliver_all(client, settings, stripe_events.event("invoice.payment_failed", failed, created=now - 40),
                stripe_events.event("customer.subscription.updated", {**subscription, "status": "past_due"},
                                    created=now - 40))
    assert tier_of(db)[1:] == ("past_due", "sub_tier1", "cus_tier1", True)
    assert "files up to 20 GB" in client.get("/creator").text
    assert "Your last payment failed" in client.get("/creator/billing").text
    # An older event delivered late changes nothing.
    deliver_all(client, settings, stripe_events.event("invoice.paid", invoice, created=now - 45))
    assert tier_of(db)[1] == "past_due"
    # Past the grace period the default tier applies.
    db.execute("UPDATE creators SET past_due_since = now() - interval '8 days' WHERE user_id = %s", (maker,))
    assert "files up to 10 MB" in client.get("/creator").text
    # Paying again restores it.
    deliver_all(client, settings, stripe_events.event("invoice.paid", {**invoice, "id": "in_late"}, created=now - 30))
    assert tier_of(db)[1:] == ("active", "sub_tier1", "cus_tier1", False)


def test_a_downgrade_over_quota_blocks_new_uploads_only(creator, db, tmp_path):
    sources = tmp_path
    client, settings = creator.client, creator.settings
    maker = user_id(db, "maker")
    session, subscription, invoice = subscription_events(maker, "big_files")
    now = int(time.time())
    deliver_all(client, settings, stripe_events.event("checkout.session.completed", session, created=now - 20))
    item = new_item(client, "audio")
    assert upload(client, item, samples.write_mp3(sources)).status_code == 303
    run_jobs(settings)
    set_storage_used(db, 300 * GB)  # more than Basic's 50 GB
    kept = db.execute("SELECT count(*) FROM uploads WHERE state = 'ready'").fetchone()[0]

    deliver_all(client, settings, stripe_events.event("customer.subscription.deleted",
                                                      {**subscription, "status": "canceled"}, created=now - 10))
    assert tier_of(db)[1] == "canceled"
    refused = upload(client, item, samples.write_mp3(sources, "second.mp3"))
    assert refused.status_code == 413 and "does not fit" in refused.text
    assert db.execute("SELECT count(*) FROM uploads WHERE state = 'ready'").fetchone()[0] == kept
    assert "Your subscription has ended" in client.get("/creator/billing").text


def test_a_new_subscription_replaces_the_old_one(creator, db):
    client, settings = creator.client, creator.settings
    maker = user_id(db, "maker")
    now = int(time.time())
    first, _, _ = subscription_events(maker, "small_files", sub="sub_first")
    second, _, _ = subscription_events(maker, "everything", sub="sub_second")
    deliver_all(client, settings, stripe_events.event("checkout.session.completed", first, created=now - 20),
                stripe_events.event("checkout.session.completed", second, created=now - 10))
    assert tier_of(db)[:3] == ("everything", "active", "sub_second")
    jobs = db.execute("SELECT kind, payload->>'subscription_id', state FROM jobs "
                      "WHERE kind = 'checkout.cancel_subscription'").fetchall()
    assert jobs == [("checkout.cancel_subscription", "sub_first", "done")]
