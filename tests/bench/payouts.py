"""Payout throughput: 10,000 due payouts sent by two workers to the local Stripe fake, exactly once.

    .venv/bin/python tests/bench/payouts.py                  # 10,000 creators, two workers
    .venv/bin/python tests/bench/payouts.py --help

1. A throwaway PostgreSQL gets `--payouts` creators, each with a connected payout account ready for payouts and
   one paid sale whose hold period is over (set-based SQL, so seeding takes seconds).
2. The local Stripe fake (tests/checkout/fake_stripe.py: Stripe's wire format over HTTP, idempotency keys
   honoured, every transfer kept) runs in this process, knowing every connected account.
3. The app's own scheduler (app.payouts.queue.create_payouts) creates one payout per creator and debits the
   ledger, timed on its own.
4. `--workers` worker processes (`python -m app worker`, the real StripeGateway and official client) start
   together; the time from their start until every payout is paid gives the rate, and the time from the first
   payout paid to the last the steady rate.
5. Checks: every payout paid with its own transfer; the fake made exactly one transfer per payout (no
   idempotent replay needed, none duplicated); every creator's ledger sums to zero; the transfers' total equals
   the credits'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parents[1]), str(HERE)) if p not in sys.path]

import psutil  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    server_env,
    start_database,
    write_results,
)
from sqlalchemy import text  # noqa: E402

from app.db.engine import make_engine, make_sessionmaker  # noqa: E402
from app.payouts import queue  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.checkout.fake_stripe import FakeStripe, standard_fee  # noqa: E402

STRIPE_KEY = "sk_test_bench_0123456789abcdefghijkl"
WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"
SALE = 2500


def seed(url: str, creators: int) -> list[str]:
    """Creators ready to be paid, set-based; returns their connected account ids."""
    fee = standard_fee(SALE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO users (email, username, display_name, password_hash, email_verified_at)
            SELECT 'maker' || n || '@example.com', 'maker' || n, 'Maker ' || n, 'x', now()
            FROM generate_series(1, %(n)s) n""", {"n": creators})
        conn.execute("INSERT INTO creators (user_id, tier) SELECT id, 'basic' FROM users")
        conn.execute("INSERT INTO payout_accounts (creator_id, stripe_account_id, charges_enabled, payouts_enabled, "
                     "details_submitted) SELECT user_id, 'acct_bench' || user_id, true, true, true FROM creators")
        conn.execute("""
            INSERT INTO items (public_id, creator_id, type, title, price_mode, price_cents, status, published_at)
            SELECT 'bench' || user_id, user_id, 'audio', 'Bench Tune', 'fixed', %(sale)s, 'published', now()
            FROM creators""", {"sale": SALE})
        conn.execute("""
            INSERT INTO orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, state,
                                checkout_session_id, payment_intent_id, paid_at)
            SELECT 'o' || i.id, i.id, i.creator_id, 'fan' || i.id || '@example.com', %(sale)s, 'USD', 'paid',
                   'cs_bench_' || i.id, 'pi_bench_' || i.id, now() - interval '10 days'
            FROM items i""", {"sale": SALE})
        conn.execute("""
            INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, gross_cents, available_at,
                                        order_id, key)
            SELECT creator_id, 'USD', 'sale', amount_cents - %(fee)s, amount_cents, paid_at + interval '7 days', id,
                   'sale:' || id
            FROM orders""", {"fee": fee})
        return [r[0] for r in conn.execute("SELECT stripe_account_id FROM payout_accounts")]


def schedule(settings: Settings) -> tuple[int, float]:
    async def run() -> int:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                made = await queue.create_payouts(db, settings, await db.scalar(text("SELECT now()")))
                await db.commit()
                return made
        finally:
            await engine.dispose()

    started = time.monotonic()
    made = asyncio.run(run())
    return made, time.monotonic() - started


def send(url: str, workdir: Path, fake: FakeStripe, workers: int, payouts: int, timeout: float) -> dict[str, Any]:
    env = server_env(url, 0, 1, {"VAR_DIR": str(workdir / "var"), "STRIPE_SECRET_KEY": STRIPE_KEY,
                                 "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": fake.url})
    procs = []
    started = time.monotonic()
    for n in range(workers):
        out = (workdir / f"worker{n}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                paid = conn.execute("SELECT count(*) FROM payouts WHERE state = 'paid'").fetchone()[0]
                if paid == payouts:
                    break
                if time.monotonic() - started > timeout or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{payouts - paid} payouts left; worker log:\n"
                                       f"{(workdir / 'worker0.log').read_text()[-3000:]}")
                time.sleep(0.05)
            seconds = time.monotonic() - started
            cpu = []
            for p in procs:
                try:
                    t = psutil.Process(p.pid).cpu_times()
                    cpu.append(t.user + t.system)
                except psutil.Error:
                    pass
            first, last = conn.execute("SELECT min(paid_at), max(paid_at) FROM payouts").fetchone()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    steady = (last - first).total_seconds()
    return {"payouts": payouts, "workers": workers, "seconds": round(seconds, 2),
            "payouts_per_s": round(payouts / seconds, 1), "steady_payouts_per_s": round((payouts - 1) / steady, 1),
            "worker_cpu_ms_per_payout": round(1000 * sum(cpu) / payouts, 2),
            "note": "payouts_per_s: from the workers' start (start-up included) to the last payout paid; "
                    "steady: from the first payout paid to the last"}


def verify(url: str, fake: FakeStripe, payouts: int) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        transfers = list(fake.transfers.values())
        by_payout: dict[str, int] = {}
        for t in transfers:
            by_payout[t["transfer_group"]] = by_payout.get(t["transfer_group"], 0) + 1
        found = {
            "payouts_paid": one("SELECT count(*) FROM payouts WHERE state = 'paid'"),
            "payouts_not_paid": one("SELECT count(*) FROM payouts WHERE state <> 'paid'"),
            "distinct_transfer_ids": one("SELECT count(DISTINCT transfer_id) FROM payouts"),
            "transfers_at_stripe": len(transfers),
            "payouts_with_two_transfers": sum(1 for n in by_payout.values() if n > 1),
            "creators_whose_ledger_is_not_zero": one(
                "SELECT count(*) FROM (SELECT creator_id FROM ledger_entries GROUP BY 1 HAVING sum(amount_cents) <> 0) x"),
            "ledger_total": int(one("SELECT sum(amount_cents) FROM ledger_entries")),
            "transferred_equals_credited": sum(t["amount"] for t in transfers) == one(
                "SELECT sum(amount_cents) FROM ledger_entries WHERE kind = 'sale'"),
            "transfers_match_payouts": {(t["transfer_group"], t["id"], t["amount"]) for t in transfers} == set(
                conn.execute("SELECT public_id, transfer_id, amount_cents FROM payouts").fetchall()),
        }
    expected = {"payouts_paid": payouts, "payouts_not_paid": 0, "distinct_transfer_ids": payouts,
                "transfers_at_stripe": payouts, "payouts_with_two_transfers": 0,
                "creators_whose_ledger_is_not_zero": 0, "ledger_total": 0, "transferred_equals_credited": True,
                "transfers_match_payouts": True}
    found["exactly_once_and_balanced"] = found == {**found, **expected}
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payouts", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    add_shared_arguments(p, "unused")
    args = p.parse_args(argv)
    results: dict[str, Any] = {"machine": machine_info("stripe", "sqlalchemy", "psycopg"),
                               "load_at_start": load_at_start(), "args": {k: str(v) for k, v in vars(args).items()}}
    workdir = make_workdir("fairshelf-bench-payouts-")
    url = start_database(workdir, "fairshelf_bench_payouts")
    log(f"seeding {args.payouts} creators ready to be paid")
    accounts = seed(url, args.payouts)
    fake = FakeStripe(secret_key_prefix="sk_test_", record=False).start()
    try:
        for account_id in accounts:
            fake.accounts[account_id] = {"id": account_id, "object": "account", "capabilities": {"transfers": "active"},
                                         "payouts_enabled": True, "charges_enabled": True}
        settings = Settings(mode="test", database_url=url, stripe_secret_key=STRIPE_KEY,
                            stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=fake.url)
        made, seconds = schedule(settings)
        results["schedule"] = {"payouts": made, "seconds": round(seconds, 2)}
        log(f"scheduler: {made} payouts in {seconds:.2f} s")
        log(f"sending with {args.workers} workers")
        results["send"] = send(url, workdir, fake, args.workers, made, timeout=900)
        log(f"send: {results['send']}")
        results["check"] = verify(url, fake, made)
        log(f"check: {results['check']}")
    finally:
        fake.stop()
    write_results(results, args.json, "payouts")
    print(f"\n{results['send']['payouts']} payouts in {results['send']['seconds']} s with {args.workers} workers: "
          f"{results['send']['payouts_per_s']}/s ({results['send']['steady_payouts_per_s']}/s steady); "
          f"exactly once and balanced: {results['check']['exactly_once_and_balanced']}")
    return 0 if results["check"]["exactly_once_and_balanced"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
