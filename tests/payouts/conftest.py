"""Payout fixtures: a creator with a paid-for item, connecting a payout account through the development
processor's onboarding, sales delivered as the processor's events, and the payout clock moved by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from litestar.testing import TestClient
from stripe._http_client import HTTPClient

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
    STRIPE_SECRET_KEY,
    Inbox,
    Shop,
    fake_stripe,
    fan,
    inbox,
    order_of_last,
    order_row,
    shop,
    stripe_client,
    stripe_fan,
    stripe_settings,
    stripe_shop,
)
from tests.checkout.fake_stripe import FakeStripe
from tests.conftest import post_form, sign_up
from tests.worker.helpers import Workers


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


# --- Stripe: the app's real StripeGateway (the official client over HTTPX) against the local fake of Stripe's API.

@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client library waits 0.5 s and more between its own retries; the tests need not."""
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)


@dataclass
class StripePayouts(Payouts):
    """The Payouts driver with Stripe configured: the creator's Express account created at the fake through the
    real route, onboarding completed there and its account.updated event delivered to the Connect endpoint, and
    sales paid through Checkout Sessions the fake created, each with a payment whose fee the fake knows."""

    fake: FakeStripe = field(kw_only=True)

    def connect(self, ready: bool = True) -> str:
        response = post_form(self.client, "/creator/payouts/connect", {})
        assert response.status_code == 303, response.text
        account_id = self.db.execute("SELECT stripe_account_id FROM payout_accounts WHERE creator_id = %s",
                                     (self.creator_id,)).fetchone()[0]
        assert response.headers["location"].startswith(f"https://connect.stripe.com/setup/e/{account_id}/")
        self.onboard(account_id, ready)
        return account_id

    def onboard(self, account_id: str, ready: bool = True, *, tell: bool = True) -> dict:
        """The account's holder finishes (ready) or falls behind on (not ready) onboarding at Stripe; with
        `tell`, the account.updated event describing it is delivered and processed."""
        account = self.fake.complete_onboarding(account_id, payouts_enabled=ready)
        if tell:
            self.account_updated(account)
        return account

    def account_updated(self, account: dict) -> dict:
        payload = stripe_events.connect_event("account.updated", account, account["id"])
        response = stripe_events.deliver(self.client, payload, self.settings.connect_webhook_secret,
                                         path="/webhooks/stripe/connect")
        assert response.status_code == 200, response.text
        run_jobs(self.settings)
        return payload

    def pay_what_you_want(self) -> None:
        response = post_form(self.client, f"/creator/items/{self.shop.item_id}/pricing",
                             {"price_mode": "pwyw", "min_price": "3", "suggested_price": "5"})
        assert response.status_code == 303, response.text

    def sell(self, amount: str | None = None) -> str:
        self.buyers += 1
        form = {"email": f"buyer{self.buyers}@example.com", **({"amount": amount} if amount else {})}
        with other_browser(self.settings) as guest:
            response = post_form(guest, f"/i/{self.shop.item_id}/buy", form)
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("https://checkout.stripe.com/")
        order_id = order_of_last(self.settings)
        cents = self.db.execute("SELECT amount_cents FROM orders WHERE public_id = %s", (order_id,)).fetchone()[0]
        self.fake.add_payment_intent("pi_" + order_id, cents, transfer_group=order_id)
        assert self.shop.pay(order_id, self.db, self.client)["state"] == "paid"
        run_jobs(self.settings)
        return order_id

    def deliver(self, payload: dict) -> None:
        """An event of the platform's own (charges, transfers) delivered to /webhooks/stripe and processed."""
        response = stripe_events.deliver(self.client, payload, self.settings.webhook_secret)
        assert response.status_code == 200, response.text
        run_jobs(self.settings)

    def send(self) -> None:
        """Run a sender (what the worker's periodic payouts.send does every minute)."""
        self.db.execute("INSERT INTO jobs (kind, payload, max_attempts) VALUES ('payouts.send', '{}', 1)")
        run_jobs(self.settings)

    def make_due(self) -> None:
        """A payout waiting out its back-off becomes due now."""
        self.db.execute("UPDATE payouts SET next_attempt_at = now() WHERE state = 'scheduled'")

    def payout(self) -> dict:
        """The creator's latest payout, as the database holds it."""
        cursor = self.db.execute("SELECT * FROM payouts WHERE creator_id = %s ORDER BY id DESC LIMIT 1",
                                 (self.creator_id,))
        row = cursor.fetchone()
        assert row is not None, "no payout"
        return dict(zip([c.name for c in cursor.description], row, strict=True))

    def seconds_until_due(self) -> float:
        return float(self.db.execute("SELECT extract(epoch FROM next_attempt_at - now()) FROM payouts "
                                     "WHERE creator_id = %s ORDER BY id DESC LIMIT 1",
                                     (self.creator_id,)).fetchone()[0])


@pytest.fixture
def stripe_payouts(stripe_shop: Shop, db: psycopg.Connection, fake_stripe: FakeStripe) -> StripePayouts:  # noqa: F811
    return StripePayouts(stripe_shop, db, fake=fake_stripe)


def stripe_worker_env(settings: Settings, fake: FakeStripe, **extra: str) -> dict[str, str]:
    """What `python -m app worker` needs to send payouts to the fake: Settings.from_env's names."""
    return {"STRIPE_SECRET_KEY": STRIPE_SECRET_KEY, "STRIPE_API_BASE": fake.url,
            "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret, "VAR_DIR": str(settings.var_dir),
            "PAYOUT_MAX_ATTEMPTS": str(settings.payout_max_attempts), **extra}


@pytest.fixture
def payout_workers(database_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Real worker processes against the test database, killed at teardown if still running."""
    logs = tmp_path / "worker-logs"
    logs.mkdir(exist_ok=True)
    spawned = Workers(database_url, logs)
    try:
        yield spawned
    finally:
        spawned.kill_all()


@contextmanager
def admin_browser(settings: Settings, db: psycopg.Connection) -> Iterator[TestClient]:
    """A signed-in administrator with a browser of their own, on the app these settings make."""
    with other_browser(settings) as browser:
        sign_up(browser, "boss", email="boss@example.com", display_name="The Boss")
        db.execute("UPDATE users SET is_admin = true WHERE username = 'boss'")
        yield browser


@pytest.fixture
def admin(stripe_settings: Settings, db: psycopg.Connection) -> Iterator[TestClient]:  # noqa: F811
    """A signed-in administrator with a browser of their own."""
    with admin_browser(stripe_settings, db) as browser:
        yield browser
