"""Payout fixtures: a creator with a paid-for item, connecting a payout account through the development
processor's onboarding, sales delivered as the processor's events, and the payout clock moved by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import pytest
from litestar.testing import TestClient

from app.settings import Settings
from tests.catalog.conftest import (  # noqa: F401 - fixtures used by the payout tests
    CreatorSetup,
    become_creator,
    creator,
    other_browser,
    run_jobs,
    visitor,
)
from tests.checkout import stripe_events
from tests.checkout.conftest import (  # noqa: F401
    Inbox,
    Shop,
    fake_stripe,
    fan,
    inbox,
    order_row,
    shop,
    stripe_client,
    stripe_fan,
    stripe_settings,
    stripe_shop,
)
from tests.conftest import post_form


@dataclass
class Payouts:
    """Driving getting paid as the processor and time would: onboarding events, sales, the clock, the worker."""

    shop: Shop
    db: psycopg.Connection
    buyers: int = 0

    @property
    def client(self) -> TestClient:
        return self.shop.creator.client

    @property
    def settings(self) -> Settings:
        return self.shop.settings

    @property
    def creator_id(self) -> int:
        return self.db.execute("SELECT user_id FROM creators c JOIN users u ON u.id = c.user_id "
                               "WHERE u.username = 'maker'").fetchone()[0]

    def connect(self, ready: bool = True) -> str:
        """Start onboarding through the real route, then deliver the account.updated event Stripe would send to
        the Connect endpoint; returns the connected account's id."""
        response = post_form(self.client, "/creator/payouts/connect", {})
        assert response.status_code == 303, response.text
        assert urlsplit(response.headers["location"]).path.startswith("/dev/connect/")
        account_id = self.db.execute("SELECT stripe_account_id FROM payout_accounts WHERE creator_id = %s",
                                     (self.creator_id,)).fetchone()[0]
        self.account_event(account_id, ready)
        return account_id

    def account_event(self, account_id: str, ready: bool, **kwargs: object) -> dict:
        payload = stripe_events.connect_event("account.updated", stripe_events.account(account_id, ready=ready),
                                              account_id, **kwargs)
        response = stripe_events.deliver(self.client, payload, self.settings.connect_webhook_secret,
                                         path="/webhooks/stripe/connect")
        assert response.status_code == 200, response.text
        run_jobs(self.settings)
        return payload

    def sell(self, amount: str | None = None) -> str:
        """A paid order by a new guest buyer (completion event delivered and processed, the sale credited);
        returns its public id."""
        self.buyers += 1
        form = {"email": f"buyer{self.buyers}@example.com", **({"amount": amount} if amount else {})}
        with other_browser(self.settings) as guest:
            order_id = self.shop.start(guest, **form)
        self.shop.pay(order_id, self.db, self.client)
        run_jobs(self.settings)
        return order_id

    def advance(self, days: float) -> None:
        """Move the payout clock ahead (what the development clock page does)."""
        self.db.execute("INSERT INTO dev_clock (id, offset_seconds) VALUES (true, %(s)s) ON CONFLICT (id) "
                        "DO UPDATE SET offset_seconds = dev_clock.offset_seconds + %(s)s", {"s": int(days * 86400)})

    def run_scheduler(self) -> None:
        self.db.execute("INSERT INTO jobs (kind, payload) VALUES ('payouts.schedule', '{}')")
        run_jobs(self.settings)

    def balance(self) -> tuple[int, int]:
        """(total, available now by the payout clock) straight from the ledger."""
        return self.db.execute(
            "SELECT COALESCE(sum(amount_cents), 0), COALESCE(sum(amount_cents) FILTER (WHERE available_at <= "
            "now() + make_interval(secs => COALESCE((SELECT offset_seconds FROM dev_clock), 0))), 0) "
            "FROM ledger_entries WHERE creator_id = %s", (self.creator_id,)).fetchone()

    def entries(self) -> list[tuple[str, int]]:
        return self.db.execute("SELECT kind, amount_cents FROM ledger_entries WHERE creator_id = %s ORDER BY id",
                               (self.creator_id,)).fetchall()

    def payouts(self) -> list[tuple[str, int]]:
        return self.db.execute("SELECT state, amount_cents FROM payouts WHERE creator_id = %s ORDER BY id",
                               (self.creator_id,)).fetchall()


@pytest.fixture
def payouts(shop: Shop, db: psycopg.Connection) -> Payouts:  # noqa: F811
    return Payouts(shop, db)
