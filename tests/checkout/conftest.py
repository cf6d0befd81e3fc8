"""Checkout fixtures: a creator with a published paid audio item, buyers with browsers of their own, starting a
purchase through the real routes, and delivering the processor's events to the real webhook endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from tests.catalog.conftest import (  # noqa: F401 - fixtures used by the checkout tests
    CreatorSetup,
    become_creator,
    creator,
    other_browser,
    run_jobs,
    visitor,
)
from tests.catalog.item_helpers import publish, publishable_audio
from tests.checkout import stripe_events
from tests.checkout.fake_stripe import FakeStripe
from tests.conftest import make_settings, post_form, sign_up


@dataclass
class Shop:
    """A creator's published audio item for sale, and how to buy it."""

    creator: CreatorSetup
    item_id: str
    settings: Settings

    def start(self, client: TestClient, **form: str) -> str:
        """Start checkout through the real route; returns the order's public id."""
        response = post_form(client, f"/i/{self.item_id}/buy", form)
        assert response.status_code == 303, response.text
        assert "/dev/checkout/" in response.headers["location"]
        return order_of_last(self.settings)

    def pay(self, order_id: str, db: psycopg.Connection, client: TestClient) -> dict:
        """The processor's completion event for the order, delivered and processed."""
        order = order_row(db, order_id)
        payload = stripe_events.event("checkout.session.completed", stripe_events.session(
            order_id, order["amount_cents"], session_id=order["checkout_session_id"],
            payment_intent="pi_" + order_id, email=order["buyer_email"]))
        assert stripe_events.deliver(client, payload, self.settings.webhook_secret).status_code == 200
        run_jobs(self.settings)
        return order_row(db, order_id)


def order_of_last(settings: Settings) -> str:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT public_id FROM orders ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return row[0]


def order_row(db: psycopg.Connection, order_id: str) -> dict:
    cursor = db.execute("SELECT * FROM orders WHERE public_id = %s", (order_id,))
    names = [c.name for c in cursor.description]
    row = cursor.fetchone()
    assert row is not None, f"no order {order_id}"
    return dict(zip(names, row, strict=True))


@pytest.fixture
def shop(creator: CreatorSetup, tmp_path: Path) -> Shop:  # noqa: F811
    public_id = publishable_audio(creator, tmp_path, price="4.99")
    assert publish(creator.client, public_id).status_code == 303
    return Shop(creator, public_id, creator.settings)


@pytest.fixture
def fan(settings: Settings) -> Iterator[TestClient]:
    """A signed-in fan with a browser of their own."""
    with other_browser(settings) as browser:
        sign_up(browser, "fan_buyer", email="fan@example.com", display_name="Fan Buyer")
        yield browser


def location_path(response) -> str:  # type: ignore[no-untyped-def]
    parts = urlsplit(response.headers["location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- Stripe: the app's real gateway (the official client over HTTPX) against the local fake of Stripe's API.

STRIPE_SECRET_KEY = "sk_test_fairshelf_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_WEBHOOK_SECRET = "whsec_test_fairshelf_0123456789abcdef"


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        yield fake


@pytest.fixture
def stripe_settings(database_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> Settings:
    """Settings with Stripe configured (test keys) and its API at the fake."""
    return make_settings(database_url, var_dir=tmp_path / "var", stripe_secret_key=STRIPE_SECRET_KEY,
                         stripe_webhook_secret=STRIPE_WEBHOOK_SECRET, stripe_api_base=fake_stripe.url)


@pytest.fixture
def stripe_client(stripe_settings: Settings) -> Iterator[TestClient]:
    """A browser on the app with Stripe configured (not signed in)."""
    with TestClient(create_app(stripe_settings), base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def stripe_shop(stripe_client: TestClient, stripe_settings: Settings, tmp_path: Path) -> Shop:
    """The `shop` setup (a creator's published $4.99 audio item) on the app with Stripe configured. Its `pay`
    delivers the completion event signed with the Stripe webhook secret; its `start` expects the development
    processor and is not for it."""
    become_creator(stripe_client, "maker")
    setup = CreatorSetup(stripe_client, stripe_settings)
    public_id = publishable_audio(setup, tmp_path, price="4.99")
    assert publish(stripe_client, public_id).status_code == 303
    return Shop(setup, public_id, stripe_settings)


@pytest.fixture
def stripe_fan(stripe_settings: Settings) -> Iterator[TestClient]:
    """A signed-in fan with a browser of their own, on the app with Stripe configured."""
    with other_browser(stripe_settings) as browser:
        sign_up(browser, "fan_buyer", email="fan@example.com", display_name="Fan Buyer")
        yield browser


# --- The webhook inbox: delivering the processor's events as it does (retries included) and reading them back.

@dataclass
class Inbox:
    """POST /webhooks/stripe as the processor uses it, the worker that processes what it stored, and the stored
    events (payment_events) as the admin page shows them."""

    client: TestClient
    settings: Settings
    db: psycopg.Connection

    def deliver(self, payload: dict, times: int = 1, *, new: bool = True) -> None:
        """Deliver one event `times` times, as the processor retrying it would: every delivery is acknowledged with
        200, only the first (when `new`) is stored, and the event is stored exactly once."""
        for n in range(times):
            response = stripe_events.deliver(self.client, payload, self.settings.webhook_secret)
            assert response.status_code == 200, response.text
            assert response.json() == {"received": True, "duplicate": n > 0 or not new}, response.text
        assert self.db.execute("SELECT count(*) FROM payment_events WHERE stripe_id = %s",
                               (payload["id"],)).fetchone() == (1,)

    def process(self, *, retries: bool = False) -> None:
        """Run the worker until nothing is due; with `retries`, make jobs waiting out their back-off due first."""
        if retries:
            self.db.execute("UPDATE jobs SET run_at = now() WHERE state = 'queued'")
        run_jobs(self.settings)

    def state(self, payload: dict) -> tuple[str, str]:
        """The stored event's processing state and last error."""
        row = self.db.execute("SELECT state, last_error FROM payment_events WHERE stripe_id = %s",
                              (payload["id"],)).fetchone()
        assert row is not None, f"event {payload['id']} was not stored"
        return row[0], row[1]

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM payment_events").fetchone()[0]


@pytest.fixture
def inbox(client: TestClient, settings: Settings, db: psycopg.Connection) -> Inbox:
    return Inbox(client, settings, db)


def settle_everything(inbox: Inbox, db: psycopg.Connection) -> None:
    """Run retries until no event waits for another (each round makes the waiting jobs due)."""
    for _ in range(6):
        if not db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]:
            return
        inbox.process(retries=True)
    pytest.fail("events still waiting after six rounds of retries")
