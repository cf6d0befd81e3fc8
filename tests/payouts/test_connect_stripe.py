"""Connecting a payout account against the Stripe fake: the account is created once, the onboarding link is
Stripe's, and coming back asks Stripe for the account's status (before its event arrives, or if it never does)."""

from __future__ import annotations

from tests.conftest import post_form
from tests.payouts.conftest import StripePayouts


def test_coming_back_from_onboarding_asks_stripe_for_the_status(stripe_payouts: StripePayouts, fake_stripe,
                                                                quick_retries):
    p = stripe_payouts
    account_id = p.connect(ready=False)
    assert len(fake_stripe.received("POST", "/v1/accounts")) == 1
    created = fake_stripe.last("POST", "/v1/accounts").params()
    assert created["type"] == "express" and created["capabilities"] == {"transfers": {"requested": "true"}}
    link = fake_stripe.last("POST", "/v1/account_links").params()
    assert link["type"] == "account_onboarding" and link["account"] == account_id
    assert link["return_url"].endswith("/creator/payouts/connect/return")
    assert link["refresh_url"].endswith("/creator/payouts/connect/refresh")

    # Connecting again reuses the account; only a new link is made.
    assert post_form(p.client, "/creator/payouts/connect", {}).status_code == 303
    assert len(fake_stripe.received("POST", "/v1/accounts")) == 1
    assert len(fake_stripe.received("POST", "/v1/account_links")) == 2

    # The holder finishes at Stripe; the event has not come yet, but the return page asks Stripe.
    p.onboard(account_id, ready=True, tell=False)
    back = p.client.get("/creator/payouts/connect/return", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/creator/payouts"
    assert fake_stripe.last("GET", f"/v1/accounts/{account_id}")
    assert p.db.execute("SELECT payouts_enabled, currently_due FROM payout_accounts").fetchone() == (True, [])
    assert "Ready" in p.client.get("/creator/payouts").text


def test_coming_back_while_stripe_is_down_still_lands_on_the_page(stripe_payouts: StripePayouts, fake_stripe,
                                                                  quick_retries):
    p = stripe_payouts
    p.connect(ready=False)
    fake_stripe.fail_next(5, 500)
    back = p.client.get("/creator/payouts/connect/return", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/creator/payouts"
    page = p.client.get("/creator/payouts")
    assert page.status_code == 200 and "Not ready" in page.text
    assert p.db.execute("SELECT payouts_enabled FROM payout_accounts").fetchone() == (False,)
