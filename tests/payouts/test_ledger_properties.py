"""The ledger's promises, checked on random histories run through the app's own services on the real database:
sales (net of the processor's fee), refunds, disputes, the payout clock and payout runs. No payout ever takes more
than the available balance at its creation, the balance is what the entries sum to, and paid out plus balance is
always what was credited less what was debited. The database refuses an uncovered payout however it is written,
and the scheduler makes one payout however many times (and on however many workers) it runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import Creator
from app.checkout.devprocessor import dev_fee
from app.payouts import clock, dashboard, ledger, queue
from app.settings import Settings
from tests.conftest import make_settings
from tests.discovery.conftest import add_item
from tests.payouts.ledger_rows import (
    HOLD,
    Shelf,
    empty_scenario,
    mark_paid,
    paid_order,
    ready_creator,
    reversal,
    run,
)


@pytest.fixture
def shelf(db: psycopg.Connection, database_url: str, tmp_path: Path) -> Shelf:
    return ready_creator(db, make_settings(database_url, var_dir=tmp_path / "var"))


# --- Random histories ------------------------------------------------------------------------------------------

ORDER = st.integers(0, 40)  # which of the sales so far (modulo their number)
OPERATIONS = st.one_of(
    st.tuples(st.just("sale"), st.integers(50, 6000)),
    st.tuples(st.just("sale"), st.integers(50, 6000)),
    st.tuples(st.just("sale"), st.integers(50, 600)),
    st.tuples(st.just("refund"), ORDER, st.none() | st.integers(1, 3000)),  # None: whatever is left, in full
    st.tuples(st.just("dispute"), ORDER),
    st.tuples(st.just("close"), ORDER, st.booleans()),
    st.tuples(st.just("advance"), st.integers(1, 240)),  # hours
    st.tuples(st.just("advance"), st.integers(24, 240)),
    st.tuples(st.just("payout_run")),
    st.tuples(st.just("payout_run")),
    st.tuples(st.just("settle"), st.sampled_from(["paid", "failed"])),
)


@dataclass
class Sold:
    order_id: int
    amount: int
    refunded: int = 0
    dispute: str = ""  # "", "open", "won" or "lost"
    disputed: int = 0


@dataclass
class Books:
    """What the history should have left, kept independently of the ledger."""

    sold: list[Sold] = field(default_factory=list)
    credited: int = 0  # sales net of fees, disputes won
    debited: int = 0  # refunds, disputes
    paid_out: int = 0  # payouts not failed
    open: dict[int, int] = field(default_factory=dict)  # open payouts: id → amount
    refunds: int = 0

    def pick(self, index: int) -> Sold | None:
        return self.sold[index % len(self.sold)] if self.sold else None


async def step(db: AsyncSession, shelf: Shelf, books: Books, op: tuple) -> None:
    settings = shelf.settings
    now = await clock.now(db, settings)
    kind = op[0]
    if kind == "sale":
        amount = op[1]
        order_id = await paid_order(db, shelf, amount, now)
        assert await ledger.credit_sale(db, order_id, dev_fee(amount), HOLD)
        assert not await ledger.credit_sale(db, order_id, dev_fee(amount), HOLD)  # a retried job: no second entry
        books.sold.append(Sold(order_id, amount))
        books.credited += amount - dev_fee(amount)
    elif kind == "refund":
        sold = books.pick(op[1])
        if sold is None or sold.dispute or sold.amount == sold.refunded:
            return
        left = sold.amount - sold.refunded
        amount = left if op[2] is None else min(op[2], left)
        books.refunds += 1
        assert await reversal(db, sold.order_id, "refund", amount, f"re_{books.refunds}")
        sold.refunded += amount
        books.debited += amount
    elif kind == "dispute":
        sold = books.pick(op[1])
        if sold is None or sold.dispute or sold.amount == sold.refunded:
            return
        sold.dispute, sold.disputed = "open", sold.amount - sold.refunded
        assert await reversal(db, sold.order_id, "dispute", sold.disputed, f"dp_{sold.order_id}")
        books.debited += sold.disputed
    elif kind == "close":
        sold = books.pick(op[1])
        if sold is None or sold.dispute != "open":
            return
        # The closing event records the dispute again in case its opening never came: the same fact, no entry.
        assert not await reversal(db, sold.order_id, "dispute", sold.disputed, f"dp_{sold.order_id}")
        if op[2]:
            assert await reversal(db, sold.order_id, "dispute_won", sold.disputed, f"dp_{sold.order_id}")
            books.credited += sold.disputed
            event("a dispute was won")
        sold.dispute = "won" if op[2] else "lost"
    elif kind == "advance":
        await clock.advance(db, settings, timedelta(hours=op[1]))
    elif kind == "payout_run":
        await payout_run(db, shelf, books, now)
    elif kind == "settle":
        for payout_id, amount in books.open.items():
            if op[1] == "paid":
                await mark_paid(db, payout_id)
            else:
                assert await queue.fail(db, payout_id, "Your bank refused it.", "test: refused", None)
                assert not await queue.fail(db, payout_id, "Your bank refused it.", "test: refused", None)
                books.paid_out -= amount
                event("a payout failed and its money came back")
        books.open.clear()


async def payout_run(db: AsyncSession, shelf: Shelf, books: Books, now: datetime) -> None:
    settings = shelf.settings
    before = await ledger.balance(db, shelf.creator_id, "USD", now)
    made = await queue.create_payouts(db, settings, now)
    due = not books.open and before.available >= settings.payout_minimum_cents
    assert made == (1 if due else 0), (made, before, books.open)
    if not made:
        return
    payout_id, amount, state = (await db.execute(text(
        "SELECT id, amount_cents, state FROM payouts WHERE creator_id = :c ORDER BY id DESC LIMIT 1"),
        {"c": shelf.creator_id})).one()
    assert state == "scheduled"
    assert amount == before.available  # the whole available balance, and never more
    after = await ledger.balance(db, shelf.creator_id, "USD", now)
    assert after.available == 0
    assert after.total == before.total - amount
    books.open[payout_id] = amount
    books.paid_out += amount
    event("a payout was made")


UNCOVERED = """
    SELECT p.id FROM ledger_entries p
    WHERE p.kind = 'payout' AND p.creator_id = :c
      AND (SELECT sum(e.amount_cents) FROM ledger_entries e
           WHERE e.creator_id = p.creator_id AND e.id <= p.id AND e.available_at <= p.available_at) < 0
"""


async def check(db: AsyncSession, shelf: Shelf, books: Books) -> ledger.Balance:
    c = {"c": shelf.creator_id}
    now = await clock.now(db, shelf.settings)
    balance = await ledger.balance(db, shelf.creator_id, "USD", now)
    summed = await db.scalar(text("SELECT COALESCE(sum(amount_cents), 0) FROM ledger_entries WHERE creator_id = :c"), c)
    assert balance.total == summed
    credited, debited, paid_out, still_open = (await db.execute(text("""
        SELECT (SELECT COALESCE(sum(amount_cents), 0) FROM ledger_entries
                WHERE creator_id = :c AND kind IN ('sale', 'dispute_won')),
               (SELECT COALESCE(-sum(amount_cents), 0) FROM ledger_entries
                WHERE creator_id = :c AND kind IN ('refund', 'dispute')),
               (SELECT COALESCE(sum(amount_cents), 0) FROM payouts WHERE creator_id = :c AND state <> 'failed'),
               (SELECT count(*) FROM payouts WHERE creator_id = :c AND state IN ('scheduled', 'processing'))
    """), c)).one()
    assert (credited, debited, paid_out) == (books.credited, books.debited, books.paid_out)
    assert paid_out + balance.total == credited - debited
    assert still_open == len(books.open) <= 1
    assert (await db.execute(text(UNCOVERED), c)).all() == []  # no payout ever exceeded what was available
    if balance.available < 0:
        event("the available balance went negative (reversals beyond the net)")
    return balance


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(OPERATIONS, min_size=4, max_size=30), outcome=st.sampled_from(["paid", "failed"]))
def test_random_histories_keep_the_books_balanced(shelf: Shelf, db: psycopg.Connection, history: list[tuple],
                                                  outcome: str):
    empty_scenario(db)

    async def play(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        books = Books()
        async with sessionmaker() as session:
            # Every history ends with its hold periods over and payout runs, so its money goes out (or comes back).
            tail = [("sale", 2500), ("advance", 8 * 24), ("payout_run",), ("settle", outcome), ("payout_run",)]
            for op in [*history, *tail]:
                await step(session, shelf, books, op)
                await session.commit()
                await check(session, shelf, books)
            # What the earnings page reports is the same balance.
            balance = await check(session, shelf, books)
            creator = await session.get(Creator, shelf.creator_id)
            assert creator is not None
            now = await clock.now(session, shelf.settings)
            shown = await dashboard.overview(session, creator, shelf.settings, now, 30)
            assert shown["balance"].total == balance.total
            assert shown["balance"].available == (await ledger.balance(session, shelf.creator_id, "USD", now)).available
            open_payout = shown["next"].open
            assert (open_payout.id if open_payout else None) == next(iter(books.open), None)

    run(shelf.settings, play)


# --- The database's own guard -----------------------------------------------------------------------------------

def _sell(shelf: Shelf, amounts: list[int], paid_at: datetime) -> None:
    async def sell(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as session:
            for amount in amounts:
                order_id = await paid_order(session, shelf, amount, paid_at)
                assert await ledger.credit_sale(session, order_id, dev_fee(amount), HOLD)
            await session.commit()

    run(shelf.settings, sell)


def _payout_entry(db: psycopg.Connection, shelf: Shelf, amount: int, available_at: datetime | str = "now") -> None:
    """A payout and its debit, written by hand in one transaction (as no app code would)."""
    with db.transaction():
        payout_id = db.execute(
            "INSERT INTO payouts (public_id, creator_id, amount_cents, currency, destination, idempotency_key) "
            "VALUES (substr(md5(random()::text), 1, 16), %s, %s, 'USD', %s, md5(random()::text)) RETURNING id",
            (shelf.creator_id, amount, shelf.account_id)).fetchone()[0]
        db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, key) "
                   "VALUES (%s, 'USD', 'payout', %s, %s::timestamptz, %s, 'payout:' || %s)",
                   (shelf.creator_id, -amount, available_at, payout_id, payout_id))


def test_a_payout_beyond_the_available_balance_is_refused_by_the_database(shelf: Shelf, db: psycopg.Connection):
    now = datetime.now(UTC)
    _sell(shelf, [2000], now - timedelta(days=8))  # available
    _sell(shelf, [3000], now)  # on hold: no payout may take it
    available = 2000 - dev_fee(2000)

    with pytest.raises(psycopg.errors.CheckViolation, match="exceeds the available balance"):
        _payout_entry(db, shelf, available + 1)
    # Dated before the sale's money became available, even the exact amount is too much.
    with pytest.raises(psycopg.errors.CheckViolation):
        _payout_entry(db, shelf, available, now - timedelta(days=3))
    assert db.execute("SELECT count(*) FROM payouts").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM ledger_entries WHERE kind = 'payout'").fetchone() == (0,)

    _payout_entry(db, shelf, available)  # exactly what is available: accepted
    # Canceled without its money coming back, that payout still took the balance: one cent more is refused.
    db.execute("UPDATE payouts SET state = 'canceled', canceled_at = now()")
    with pytest.raises(psycopg.errors.CheckViolation):
        _payout_entry(db, shelf, 1)
    assert db.execute("SELECT sum(amount_cents) FILTER (WHERE available_at <= now()) FROM ledger_entries").fetchone() \
        == (0,)


def test_a_refund_landing_during_a_payout_run_is_never_overdrawn(shelf: Shelf, db: psycopg.Connection):
    """The run read the balance before a concurrent refund committed: the database refuses that payout, and the
    run pays the smaller balance instead."""
    _sell(shelf, [2000, 2000], datetime.now(UTC) - timedelta(days=8))
    available = 2 * (2000 - dev_fee(2000))
    order_id = db.execute("SELECT min(id) FROM orders").fetchone()[0]

    async def race(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        async with sessionmaker() as refunding, sessionmaker() as paying, sessionmaker() as watching:
            assert await reversal(refunding, order_id, "refund", 1000, "re_race")  # holds the creator's ledger lock
            run_ = asyncio.create_task(queue.create_payouts(paying, shelf.settings, datetime.now(UTC)))
            await waiting_on_a_lock(watching)
            await refunding.commit()
            made = await run_
            await paying.commit()
            return made

    assert run(shelf.settings, race) == 1
    assert db.execute("SELECT amount_cents FROM payouts").fetchall() == [(available - 1000,)]
    assert db.execute("SELECT sum(amount_cents) FILTER (WHERE available_at <= now()) FROM ledger_entries").fetchone() \
        == (0,)


async def waiting_on_a_lock(watching: AsyncSession) -> None:
    for _ in range(200):
        waiting = await watching.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
        await watching.rollback()
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")


# --- The scheduler --------------------------------------------------------------------------------------------

def test_concurrent_payout_runs_make_one_payout(shelf: Shelf, db: psycopg.Connection):
    _sell(shelf, [1500, 2500], datetime.now(UTC) - timedelta(days=8))
    available = 1500 - dev_fee(1500) + 2500 - dev_fee(2500)

    async def overlapping(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
        """The first run keeps its payout uncommitted until the second is seen waiting for it."""
        async with sessionmaker() as first, sessionmaker() as second, sessionmaker() as watching:
            made_first = await queue.create_payouts(first, shelf.settings, datetime.now(UTC))
            later = asyncio.create_task(queue.create_payouts(second, shelf.settings, datetime.now(UTC)))
            await waiting_on_a_lock(watching)
            await first.commit()
            made_second = await later
            await second.commit()
            return [made_first, made_second]

    async def together(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
        async def one() -> int:
            async with sessionmaker() as session:
                made = await queue.create_payouts(session, shelf.settings, datetime.now(UTC))
                await session.commit()
                return made

        return list(await asyncio.gather(*(one() for _ in range(4))))

    assert run(shelf.settings, overlapping) == [1, 0]
    assert run(shelf.settings, together) == [0, 0, 0, 0]  # one is open already
    assert db.execute("SELECT state, amount_cents FROM payouts").fetchall() == [("scheduled", available)]
    assert db.execute("SELECT count(*) FROM ledger_entries WHERE kind = 'payout'").fetchone() == (1,)

    # With the first one paid, four runs at once (no run record between them) still make a single payout.
    _sell(shelf, [3000], datetime.now(UTC) - timedelta(days=8))

    async def pay_first(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as session:
            await mark_paid(session, db.execute("SELECT id FROM payouts").fetchone()[0])
            await session.commit()

    run(shelf.settings, pay_first)
    assert sorted(run(shelf.settings, together)) == [0, 0, 0, 1]
    assert db.execute("SELECT state, amount_cents FROM payouts ORDER BY id").fetchall() == [
        ("paid", available), ("scheduled", 3000 - dev_fee(3000))]


def test_the_scheduler_runs_once_per_period(shelf: Shelf, db: psycopg.Connection):
    _sell(shelf, [2000], datetime.now(UTC) - timedelta(days=8))
    settings: Settings = shelf.settings
    now = datetime.now(UTC)

    async def twice(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
        made = []
        for _ in range(2):
            async with sessionmaker() as session:
                made.append(await queue.schedule(session, settings, now))
                await session.commit()
        return made

    async def at_once(sessionmaker: async_sessionmaker[AsyncSession], when: datetime) -> list[int]:
        async def one() -> int:
            async with sessionmaker() as session:
                made = await queue.schedule(session, settings, when)
                await session.commit()
                return made

        return list(await asyncio.gather(*(one() for _ in range(3))))

    assert run(settings, twice) == [1, 0]
    slot = queue.slot_start(now, settings)
    assert db.execute("SELECT slot_start, payouts_created FROM payout_runs").fetchall() == [(slot, 1)]

    # Later in the same period (after the payout failed and its money came back), still nothing.
    async def fail_it(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
        async with sessionmaker() as session:
            failed = await queue.fail(session, db.execute("SELECT id FROM payouts").fetchone()[0], "Refused.", "x", None)
            await session.commit()
            return failed

    assert run(settings, fail_it)
    last_moment = slot + timedelta(days=settings.payout_interval_days) - timedelta(seconds=1)
    assert run(settings, lambda sm: at_once(sm, last_moment)) == [0, 0, 0]
    # The next period pays the returned money once, however many workers run the scheduler.
    assert sorted(run(settings, lambda sm: at_once(sm, last_moment + timedelta(seconds=1)))) == [0, 0, 1]
    assert db.execute("SELECT state FROM payouts ORDER BY id").fetchall() == [("failed",), ("scheduled",)]
    assert db.execute("SELECT count(*) FROM payout_runs").fetchone() == (2,)


def test_a_creator_with_a_large_id_can_be_credited(db: psycopg.Connection, database_url: str, tmp_path: Path):
    big = 2**31 + 7
    db.execute("INSERT INTO users (id, email, username, display_name, password_hash, email_verified_at) "
               "OVERRIDING SYSTEM VALUE VALUES (%s, 'big@example.com', 'big_maker', 'Big Maker', 'x', now())", (big,))
    db.execute("INSERT INTO creators (user_id, tier) VALUES (%s, 'basic')", (big,))
    item = add_item(db, big, "Big Song", price_mode="fixed", price_cents=500)
    db.execute("INSERT INTO orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, state, paid_at) "
               "SELECT 'bigorder0001', id, creator_id, 'fan@example.com', 500, 'USD', 'paid', now() FROM items "
               "WHERE public_id = %s", (item,))
    settings = make_settings(database_url, var_dir=tmp_path / "var")
    order_id = db.execute("SELECT id FROM orders").fetchone()[0]

    async def credit(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
        async with sessionmaker() as session:
            credited = await ledger.credit_sale(session, order_id, dev_fee(500), HOLD)
            await session.commit()
            return credited

    try:
        assert run(settings, credit)
    except Exception as exc:  # surfaced through SQLAlchemy: the driver's own error is its cause
        raise (exc.__cause__ or exc) from None
    assert db.execute("SELECT creator_id, amount_cents FROM ledger_entries").fetchall() == [(big, 500 - dev_fee(500))]
