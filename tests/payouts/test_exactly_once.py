"""Exactly once, with real worker processes (`python -m app worker`) sending payouts to the local fake of Stripe's
API: a worker killed between Stripe's call and its own write leaves a payout the next worker finishes without a
second transfer, and two workers draining the queue side by side never send one payout twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payouts import queue
from app.settings import Settings
from tests.catalog.conftest import run_jobs
from tests.checkout.conftest import STRIPE_SECRET_KEY
from tests.checkout.fake_stripe import FakeStripe
from tests.payouts.conftest import stripe_worker_env
from tests.worker.helpers import Workers, listening_workers, run_async, scalar, wait_for

pytestmark = pytest.mark.usefixtures("quick_retries")

TRANSFERS = "/v1/transfers"


def seed_creators(db: psycopg.Connection, fake: FakeStripe, balances: list[int]) -> tuple[list[int], list[str]]:
    """Creators whose Express accounts at the fake finished onboarding (their payout accounts ready), in a few
    set-based statements; returns their ids and accounts. Their money comes with `credit`."""
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {STRIPE_SECRET_KEY}"}) as http:
        accounts = []
        for _ in balances:
            response = http.post("/v1/accounts", data={"type": "express"})
            assert response.status_code == 200, response.text
            accounts.append(response.json()["id"])
    for account in accounts:
        fake.complete_onboarding(account)
    n = len(balances)
    creators = [r[0] for r in db.execute(
        "WITH u AS (INSERT INTO users (email, username, display_name, password_hash) "
        "           SELECT 'seller' || i || '@example.com', 'seller' || i, 'Seller ' || i, 'x' "
        "           FROM generate_series(1, %s) i RETURNING id) "
        "INSERT INTO creators (user_id, tier) SELECT id, 'basic' FROM u ORDER BY id RETURNING user_id",
        (n,)).fetchall()]
    creators.sort()
    db.execute("INSERT INTO payout_accounts (creator_id, stripe_account_id, charges_enabled, payouts_enabled, "
               "details_submitted) SELECT c, a, true, true, true FROM unnest(%s::bigint[], %s::text[]) AS t(c, a)",
               (creators, accounts))
    return creators, accounts


def credit(db: psycopg.Connection, creators: list[int], balances: list[int]) -> None:
    """Opening balances, available now (adjustments: the creator's own id stands in for the admin)."""
    db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, "
               "memo) SELECT c, 'USD', 'adjustment', b, now() - interval '1 minute', c, 'adjustment:seed-' || c, "
               "'opening balance' FROM unnest(%s::bigint[], %s::bigint[]) AS t(c, b)", (creators, balances))


def create_payouts(settings: Settings) -> int:
    """The scheduler's statement (what "pay out now" runs): a payout of every available balance, and the
    sender jobs to send them."""

    async def go(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        async with sessionmaker() as db:
            made = await queue.create_payouts(db, settings, datetime.now(UTC))
            await db.commit()
        return made

    return run_async(settings, go)


def payout_rows(db: psycopg.Connection) -> list[dict]:
    cursor = db.execute("SELECT * FROM payouts ORDER BY id")
    names = [c.name for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def ledger_sums(db: psycopg.Connection) -> dict[int, int]:
    return dict(db.execute("SELECT creator_id, sum(amount_cents)::bigint FROM ledger_entries GROUP BY creator_id"))


def test_a_worker_killed_between_stripe_and_its_commit_is_recovered_without_a_second_transfer(
        stripe_settings, fake_stripe, db, payout_workers: Workers):
    [creator], [account] = seed_creators(db, fake_stripe, [2500])
    credit(db, [creator], [2500])
    assert create_payouts(stripe_settings) == 1
    [payout] = payout_rows(db)
    assert payout["state"] == "scheduled"

    # Stripe processes the transfer (and keeps its answer under the payout's idempotency key), then the worker
    # dies before it hears back.
    held = fake_stripe.hold_after("POST", TRANSFERS)
    worker = payout_workers.start(**stripe_worker_env(stripe_settings, fake_stripe))
    wait_for(held.processed.is_set, timeout=30, what="the worker's transfer to reach the fake", alive=[worker])
    worker.kill()
    held.release.set()

    [payout] = payout_rows(db)
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("processing", 1, None)
    assert payout["locked_by"].startswith("payouts-job-")
    assert held.record is not None and held.record.response is not None and held.record.status is None
    made = held.record.response["id"]
    assert held.record.idempotency_key == payout["idempotency_key"]
    assert list(fake_stripe.transfers) == [made]  # the money moved; our database does not know yet
    assert fake_stripe.transfers[made]["destination"] == account

    # Its lease runs out; the next sender takes the payout over and asks again with the same key.
    db.execute("UPDATE payouts SET next_attempt_at = now(), locked_until = now() - interval '1 second' "
               "WHERE id = %s", (payout["id"],))
    db.execute("INSERT INTO jobs (kind, payload, max_attempts) VALUES ('payouts.send', '{}', 1)")
    run_jobs(stripe_settings)

    [payout] = payout_rows(db)
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("paid", 2, made)
    assert payout["locked_by"] is None
    first, recovery = fake_stripe.received("POST", TRANSFERS)
    assert first is held.record
    assert recovery.replayed is True and recovery.status == 200 and recovery.response is not None
    assert recovery.response["id"] == made
    assert recovery.idempotency_key == first.idempotency_key and recovery.pairs == first.pairs
    assert len(fake_stripe.transfers_created()) == 1 and len(fake_stripe.transfers) == 1
    assert ledger_sums(db) == {creator: 0}


def test_two_workers_draining_side_by_side_send_each_payout_exactly_once(stripe_settings, fake_stripe, db,
                                                                        payout_workers: Workers):
    balances = [1000 + 7 * i for i in range(200)]
    creators, accounts = seed_creators(db, fake_stripe, balances)
    env = stripe_worker_env(stripe_settings, fake_stripe, WORKER_CONCURRENCY="2")
    pair = [payout_workers.start(**env) for _ in range(2)]
    wait_for(lambda: listening_workers(db) == 2, timeout=30, what="both workers to listen", alive=pair)
    # Their start-up round (the hourly scheduler among it) is over before any money is there.
    wait_for(lambda: scalar(db, "SELECT count(*) FROM jobs WHERE kind = 'payouts.schedule' AND state = 'done'"),
             timeout=15, what="the workers' first scheduler run", alive=pair)

    credit(db, creators, balances)
    # Sender jobs for every job slot (each worker runs two at a time): drains in both processes compete for the
    # same payouts.
    assert create_payouts(stripe_settings.with_(worker_concurrency=4)) == 200

    def all_paid() -> bool:
        return scalar(db, "SELECT count(*) FROM payouts WHERE state = 'paid'") == 200

    wait_for(all_paid, timeout=60, what="200 payouts to be paid", alive=pair, interval=0.2)
    payouts = payout_rows(db)
    assert len(payouts) == 200 and {p["state"] for p in payouts} == {"paid"}
    assert {p["attempts"] for p in payouts} == {1}  # each claimed once

    posts = fake_stripe.received("POST", TRANSFERS)
    assert len(posts) == 200
    assert all(r.status == 200 and not r.replayed for r in posts)
    created = Counter(r.form["metadata[payout_id]"] for r in fake_stripe.transfers_created())
    assert len(created) == 200 and set(created.values()) == {1}  # no payout sent by two workers
    by_payout = {r.form["metadata[payout_id]"]: r for r in posts}
    for p in payouts:
        sent = by_payout[p["public_id"]]
        assert sent.idempotency_key == p["idempotency_key"]
        assert sent.response is not None and sent.response["id"] == p["transfer_id"]
        assert (sent.form["amount"], sent.form["destination"]) == (str(p["amount_cents"]), p["destination"])
    assert len({p["transfer_id"] for p in payouts}) == 200 and len(fake_stripe.transfers) == 200
    assert sorted(t["amount"] for t in fake_stripe.transfers.values()) == sorted(balances)
    assert {t["destination"] for t in fake_stripe.transfers.values()} == set(accounts)
    sums = ledger_sums(db)
    assert set(sums) == set(creators) and set(sums.values()) == {0}

    # Both processes took part: each finished sender jobs.
    for worker in pair:
        assert "payouts.send done" in worker.log(), worker.log()
