"""What the payout tests against the Stripe fake share: a creator due a payout, a transfer made whose answer is
lost, rows inserted straight into the database, and reading emails and the audit log."""

from __future__ import annotations

import secrets
import threading

import psycopg

from tests.checkout.fake_stripe import FakeStripe, Held, standard_fee
from tests.payouts.conftest import StripePayouts

TRANSFERS = "/v1/transfers"
SALE = "20.00"
NET = 2000 - standard_fee(2000)  # what a $20 sale leaves the creator: Stripe's 2.9 % + 30¢ taken off
STATES = ("scheduled", "processing", "paid", "failed", "canceled")
ALLOWED = {("scheduled", "processing"), ("scheduled", "canceled"), ("scheduled", "failed"),
           ("processing", "paid"), ("processing", "scheduled"), ("processing", "failed")}


def due_for_payout(p: StripePayouts) -> str:
    """A connected, onboarded creator with one $20 sale past its hold; returns the connected account's id."""
    account = p.connect()
    p.pay_what_you_want()
    p.sell(SALE)
    p.advance(8)
    return account


def release_into_faults(fake: FakeStripe, held: Held, faults: int) -> threading.Thread:
    """Once the held request was processed (the transfer made), queue `faults` 500s and drop its connection: the
    client library's own retries fail, so the caller never learns the transfer's id."""

    def run() -> None:
        if held.processed.wait(20):
            fake.fail_next(faults, 500)
        held.release.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def emails_to(db: psycopg.Connection, to: str, template: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT text_body FROM emails WHERE to_address = %s AND template = %s "
                                     "ORDER BY id", (to, template))]


def admin_id(db: psycopg.Connection) -> int:
    return db.execute("SELECT id FROM users WHERE username = 'boss'").fetchone()[0]


def audit_rows(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT actor_id, action, target, reason, details FROM audit_log ORDER BY id").fetchall()


def insert_creator(db: psycopg.Connection, username: str = "shelf_one") -> int:
    user_id = db.execute("INSERT INTO users (email, username, display_name, password_hash) "
                         "VALUES (%s, %s, 'Shelf', 'x') RETURNING id", (f"{username}@example.com", username)
                         ).fetchone()[0]
    db.execute("INSERT INTO creators (user_id, tier) VALUES (%s, 'basic')", (user_id,))
    return user_id


def insert_payout(db: psycopg.Connection, creator_id: int, state: str = "scheduled", amount: int = 1000) -> int:
    public_id = secrets.token_hex(8)
    paid = state == "paid"
    return db.execute(
        "INSERT INTO payouts (public_id, creator_id, amount_cents, currency, state, destination, idempotency_key, "
        "transfer_id, paid_at) VALUES (%s, %s, %s, 'USD', %s, 'acct_x', %s, %s, %s) RETURNING id",
        (public_id, creator_id, amount, state, f"payout-{public_id}", f"tr_{public_id}" if paid else None,
         "now" if paid else None)).fetchone()[0]
