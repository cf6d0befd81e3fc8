"""Tier billing's events through the real webhook endpoint and worker: the subscription's life, and its events in
any order (an older event never undoes a newer one; the grace period starts at the first failure)."""

from __future__ import annotations

import itertools
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from tests.checkout import stripe_events
from tests.checkout.conftest import settle_everything

# --- Creator tier billing ----------------------------------------------------------------------------------------


def maker_id(db: psycopg.Connection) -> int:
    return db.execute("SELECT user_id FROM creators").fetchone()[0]


def billing(db: psycopg.Connection) -> tuple:
    return db.execute("SELECT tier, tier_status, subscription_id, billing_customer_id, past_due_since "
                      "FROM creators").fetchone()


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass
class Subscribing:
    """The processor's events about one creator's tier subscription (one customer, one subscription)."""

    creator_id: int
    tier: str = "small_files"
    subscription_id: str = ""
    customer_id: str = ""

    def __post_init__(self) -> None:
        self.subscription_id = self.subscription_id or "sub_" + secrets.token_hex(8)
        self.customer_id = self.customer_id or "cus_" + secrets.token_hex(7)

    def completed(self, created: int, payment_status: str = "paid") -> dict:
        return stripe_events.event("checkout.session.completed", stripe_events.subscription_session(
            self.creator_id, self.tier, 1000, session_id="cs_" + secrets.token_hex(12),
            subscription_id=self.subscription_id, customer_id=self.customer_id, payment_status=payment_status),
            created=created)

    def subscription(self, kind: str, status: str, created: int) -> dict:
        return stripe_events.event(f"customer.subscription.{kind}", stripe_events.subscription(
            self.subscription_id, customer=self.customer_id, status=status, creator_id=self.creator_id,
            tier=self.tier), created=created)

    def invoice(self, paid: bool, created: int) -> dict:
        return stripe_events.event("invoice.paid" if paid else "invoice.payment_failed", stripe_events.invoice(
            self.subscription_id, customer=self.customer_id, paid=paid), created=created)


def test_tier_billing_follows_the_subscription(creator, inbox, db):
    def page() -> str:  # what the creator sees
        return creator.client.get("/creator/billing").text

    assert "Not subscribed yet" in page()
    sub = Subscribing(maker_id(db))
    t = int(time.time()) - 3600  # the processor's clock: the app orders billing events by it

    def step(payload: dict) -> tuple:
        inbox.deliver(payload, times=10)
        inbox.process()
        assert inbox.state(payload) == ("processed", "")
        return billing(db)

    active = ("small_files", "active", sub.subscription_id, sub.customer_id, None)
    assert step(sub.completed(t)) == active
    assert "Your Small Files subscription is active." in page()
    assert step(sub.subscription("created", "active", t)) == active
    assert step(sub.invoice(paid=True, created=t)) == active

    # A renewal fails: past due from the failure on (the tier stays in force for the grace period) …
    past_due = ("small_files", "past_due", sub.subscription_id, sub.customer_id, at(t + 100))
    assert step(sub.invoice(paid=False, created=t + 100)) == past_due
    assert step(sub.subscription("updated", "past_due", t + 101)) == past_due  # … counted from the first failure
    assert "Your last payment failed." in page()
    # … until a retry succeeds.
    assert step(sub.invoice(paid=True, created=t + 200)) == active

    ended = ("small_files", "canceled", sub.subscription_id, sub.customer_id, None)
    assert step(sub.subscription("deleted", "canceled", t + 300)) == ended
    assert "Your subscription has ended." in page()
    assert inbox.count() == 7


def forget_billing(db: psycopg.Connection) -> None:
    """Back to a creator who never subscribed (each round then uses a subscription of its own)."""
    db.execute("UPDATE creators SET subscription_id = NULL, billing_customer_id = NULL, tier = 'basic', "
               "tier_status = 'unpaid', past_due_since = NULL, billing_updated_at = NULL")


def test_any_order_of_billing_events_ends_the_same(creator, inbox, db):
    t = int(time.time()) - 3600
    orders = list(itertools.permutations(range(5)))
    chosen = [orders[0], *random.Random(1848).sample(orders[1:], 5)]
    for order in chosen:
        forget_billing(db)
        sub = Subscribing(maker_id(db), tier="big_files")
        # Subscribing (session, subscription and first invoice at once), then a renewal failing.
        payloads = [sub.completed(t), sub.subscription("created", "active", t), sub.invoice(True, t),
                    sub.invoice(False, t + 100), sub.subscription("updated", "past_due", t + 100)]
        for i in order:
            inbox.deliver(payloads[i])
            inbox.process()
        settle_everything(inbox, db)
        assert billing(db) == ("big_files", "past_due", sub.subscription_id, sub.customer_id, at(t + 100)), order
        assert all(inbox.state(p)[0] in ("processed", "ignored") for p in payloads), order
    # Nothing was replaced, so nothing was cancelled at the processor.
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'checkout.cancel_subscription'").fetchone() == (0,)


def test_the_grace_period_starts_at_the_failure_whichever_event_comes_first(creator, inbox, db):
    t = int(time.time()) - 3600
    starts = []
    for late_failure in (False, True):
        forget_billing(db)
        sub = Subscribing(maker_id(db))
        # The renewal fails at t+100; Stripe marks the subscription past due a second later.
        failed, updated = sub.invoice(False, t + 100), sub.subscription("updated", "past_due", t + 101)
        for payload in [sub.completed(t), *((updated, failed) if late_failure else (failed, updated))]:
            inbox.deliver(payload)
            inbox.process()
        starts.append(billing(db)[4])
    assert starts == [at(t + 100), at(t + 100)]


def test_a_late_completion_of_a_replaced_subscription_changes_nothing(creator, inbox, db):
    t = int(time.time()) - 3600
    maker = maker_id(db)
    old = Subscribing(maker, tier="small_files", customer_id="cus_maker")
    new = Subscribing(maker, tier="big_files", customer_id="cus_maker")
    # The first subscription is known from its creation; its checkout completion's delivery fails (Stripe
    # retries it for days). Meanwhile the creator switches tiers: the new subscription replaces the old one.
    for payload in (old.subscription("created", "active", t), new.completed(t + 600)):
        inbox.deliver(payload)
        inbox.process()
    assert billing(db)[:3] == ("big_files", "active", new.subscription_id)
    # The old completion finally arrives. In delivery order it would have come first and been replaced since.
    inbox.deliver(old.completed(t))
    inbox.process()
    assert billing(db)[:3] == ("big_files", "active", new.subscription_id)
    cancelled = db.execute("SELECT payload->>'subscription_id' FROM jobs "
                           "WHERE kind = 'checkout.cancel_subscription'").fetchall()
    assert cancelled == [(old.subscription_id,)]
