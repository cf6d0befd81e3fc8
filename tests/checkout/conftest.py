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

from app.settings import Settings
from tests.catalog.conftest import (  # noqa: F401 - fixtures used by the checkout tests
    CreatorSetup,
    creator,
    other_browser,
    run_jobs,
    visitor,
)
from tests.catalog.item_helpers import publish, publishable_audio
from tests.checkout import stripe_events
from tests.conftest import post_form, sign_up


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
