"""Webhook acknowledgement latency at a steady delivery rate, and how fast one worker drains what was stored.

    .venv/bin/python tests/bench/webhooks.py                 # 7,000 orders, 10,000 deliveries at 200/s
    .venv/bin/python tests/bench/webhooks.py --help

1. A throwaway PostgreSQL gets one creator, one published item and `--orders` pending orders, each with its
   Checkout Session id (as if buyers had just been sent to the processor).
2. One `checkout.session.completed` event per order, in Stripe's JSON shape, plus `--duplicates` (a share of the
   total) repeated deliveries of randomly chosen events, all shuffled.
3. Granian (one worker) serves the app; an open-loop client sends the deliveries at `--rate` per second, each
   signed with the webhook secret at send time, and records each acknowledgement's latency from its scheduled
   start (so a slow answer delays nothing and hides nothing). No worker runs during this phase.
4. Then one worker (`python -m app worker`) starts and the time until every stored event is processed gives the
   drain rate. Finally the database is checked: every order paid exactly once, one entitlement each, one
   receipt and one sale email each, no event left unprocessed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parents[1]), str(HERE)) if p not in sys.path]

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    SECRET_KEY,
    Server,
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    server_env,
    start_database,
    write_results,
)

from app.checkout.devprocessor import sign  # noqa: E402
from app.settings import Settings  # noqa: E402

API_VERSION = "2026-10-28.endive"


def seed(url: str, orders: int, items: int = 1) -> list[tuple[str, str]]:
    """One creator with `items` items (1: everyone buys the same thing, a launch), and `orders` pending orders
    spread over them; returns (order public id, session id) pairs."""
    pairs = [(secrets.token_hex(6), "cs_bench_" + secrets.token_hex(10)) for _ in range(orders)]
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (email, username, display_name, password_hash, email_verified_at) "
                            "VALUES ('maker@example.com', 'maker', 'Maker', 'x', now()) RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO creators (user_id, tier) VALUES (%s, 'basic')", (user,))
        item_ids = [conn.execute(
            "INSERT INTO items (public_id, creator_id, type, title, price_mode, price_cents, status, published_at) "
            "VALUES (%s, %s, 'audio', 'Bench Tune', 'fixed', 499, 'published', now()) RETURNING id",
            (f"benchitem{n:04d}", user)).fetchone()[0] for n in range(items)]
        with conn.cursor().copy("COPY orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, "
                                "checkout_session_id) FROM STDIN") as copy:
            for n, (order_id, session_id) in enumerate(pairs):
                copy.write_row((order_id, item_ids[n % items], user, f"fan{n}@example.com", 499, "USD", session_id))
    return pairs


def completed(order_id: str, session_id: str, n: int) -> str:
    return json.dumps({
        "id": "evt_bench_" + secrets.token_hex(10), "object": "event", "api_version": API_VERSION,
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": "checkout.session.completed",
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_total": 499, "amount_subtotal": 499, "currency": "usd",
            "client_reference_id": order_id, "customer": None, "customer_email": f"fan{n}@example.com",
            "customer_details": {"email": f"fan{n}@example.com", "name": None}, "metadata": {"order_id": order_id},
            "payment_intent": "pi_bench_" + order_id, "subscription": None, "livemode": False,
        }},
    }, separators=(",", ":"))


async def deliver(base: str, bodies: list[str], rate: float, secret: str) -> dict[str, Any]:
    """Send every body at `rate`/s (open loop); latency counts from each delivery's scheduled time."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2

        async def one(at: float, body: str) -> None:
            await asyncio.sleep(max(0.0, at - loop.time()))
            headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, secret)}
            try:
                response = await client.post("/webhooks/stripe", content=body, headers=headers)
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(loop.time() - at)
            statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(one(start + i / rate, body) for i, body in enumerate(bodies)))
        elapsed = loop.time() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 2)

    return {"deliveries": len(bodies), "rate_asked": rate, "rate_achieved": round(len(bodies) / elapsed, 1),
            "statuses": statuses, "p50_ms": pct(50), "p90_ms": pct(90), "p95_ms": pct(95), "p99_ms": pct(99),
            "max_ms": round(1000 * latencies[-1], 2)}


def drain(url: str, workdir: Path, unique: int, timeout: float, profile: Path | None = None,
          concurrency: int | None = None) -> dict[str, Any]:
    extra = {"VAR_DIR": str(workdir / "var")}  # never the project's own var/ (its sweep)
    if concurrency:
        extra["WORKER_CONCURRENCY"] = str(concurrency)
    env = server_env(url, 0, 1, extra)
    log_path = workdir / "worker.log"
    command = [sys.executable, "-m", "app", "worker"]
    if profile:  # py-spy's collapsed stacks of the worker (py-spy must be on PATH)
        command = ["py-spy", "record", "--format", "raw", "--rate", "200", "-o", str(profile), "--", *command]
    with log_path.open("wb") as out:
        started = time.monotonic()
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    def postgres_cpu() -> float:
        total = 0.0
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] and proc.info["name"].startswith("postgres"):
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
        return total

    pg_before = postgres_cpu()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                left = conn.execute("SELECT count(*) FROM payment_events WHERE state NOT IN ('processed', "
                                    "'ignored')").fetchone()[0]
                if left == 0:
                    break
                if time.monotonic() - started > timeout or worker.poll() is not None:
                    raise RuntimeError(f"{left} events left unprocessed; worker log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.05)
            seconds = time.monotonic() - started
            try:
                cpu = psutil.Process(worker.pid).cpu_times()
                worker_cpu = cpu.user + cpu.system
            except psutil.Error:
                worker_cpu = float("nan")
            pg_cpu = postgres_cpu() - pg_before
            first, last = conn.execute("SELECT min(processed_at), max(processed_at) FROM payment_events").fetchone()
            steady = (last - first).total_seconds()
            # The emails the payments queued are the worker's next work; let it finish them before checking.
            while conn.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]:
                time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGINT if profile else signal.SIGTERM)  # py-spy writes its file on SIGINT
        worker.wait(timeout=60)
    return {"events": unique, "seconds": round(seconds, 2), "events_per_s": round(unique / seconds, 1),
            "steady_events_per_s": round((unique - 1) / steady, 1),
            "worker_cpu_ms_per_event": round(1000 * worker_cpu / unique, 2),
            "postgres_cpu_ms_per_event": round(1000 * pg_cpu / unique, 2),
            "note": "events_per_s: from the worker's start (its start-up included) until the last event is processed; "
                    "steady: from the first event processed to the last"}


def verify(url: str, orders: int) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        found = {
            "orders_paid": one("SELECT count(*) FROM orders WHERE state = 'paid'"),
            "orders_not_paid": one("SELECT count(*) FROM orders WHERE state <> 'paid'"),
            "events_stored": one("SELECT count(*) FROM payment_events"),
            "events_processed": one("SELECT count(*) FROM payment_events WHERE state = 'processed'"),
            "entitlements": one("SELECT count(*) FROM entitlements WHERE revoked_at IS NULL"),
            "orders_with_two_entitlements": one(
                "SELECT count(*) FROM (SELECT order_id FROM entitlements GROUP BY order_id HAVING count(*) > 1) x"),
            "receipts": one("SELECT count(*) FROM emails WHERE template = 'receipt'"),
            "sale_emails": one("SELECT count(*) FROM emails WHERE template = 'sale'"),
            "sales_count": one("SELECT sum(sales_count) FROM items"),
        }
    expected = {"orders_paid": orders, "orders_not_paid": 0, "events_stored": orders, "events_processed": orders,
                "entitlements": orders, "orders_with_two_entitlements": 0, "receipts": orders,
                "sale_emails": orders, "sales_count": orders}
    found["exactly_once"] = found == {**found, **expected}
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=7000)
    p.add_argument("--items", type=int, default=1, help="orders are spread over this many items (1: a launch)")
    p.add_argument("--duplicates", type=float, default=0.3, help="share of the deliveries that repeat an event")
    p.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--worker-concurrency", type=int, help="jobs the worker runs at once (default: the app's)")
    p.add_argument("--profile", type=Path, help="record the draining worker with py-spy into this file")
    add_shared_arguments(p, "extra environment for Granian")
    args = p.parse_args(argv)
    results: dict[str, Any] = {"machine": machine_info("litestar", "granian", "stripe", "sqlalchemy", "psycopg"),
                               "load_at_start": load_at_start(), "args": {k: str(v) for k, v in vars(args).items()}}
    workdir = make_workdir("fairshelf-bench-webhooks-")
    url = start_database(workdir, "fairshelf_bench_webhooks")
    log(f"seeding {args.orders} pending orders")
    pairs = seed(url, args.orders, args.items)
    rng = random.Random(args.seed)
    events = [completed(order_id, session_id, n) for n, (order_id, session_id) in enumerate(pairs)]
    total = round(len(events) / (1 - args.duplicates))
    bodies = events + [rng.choice(events) for _ in range(total - len(events))]
    rng.shuffle(bodies)
    server = Server(url, 1, workdir / "server.log", {"VAR_DIR": str(workdir / "var"), **dict(args.server_env)})
    server.start()
    try:
        log(f"delivering {len(bodies)} events ({len(bodies) - len(events)} duplicates) at {args.rate:.0f}/s")
        secret = Settings(secret_key=SECRET_KEY).webhook_secret
        results["ack"] = asyncio.run(deliver(server.base, bodies, args.rate, secret))
        log(f"ack: {results['ack']}")
    finally:
        server.stop()
    log("draining with one worker")
    results["drain"] = drain(url, workdir, len(events), timeout=600, profile=args.profile,
                             concurrency=args.worker_concurrency)
    log(f"drain: {results['drain']}")
    results["check"] = verify(url, args.orders)
    log(f"check: {results['check']}")
    write_results(results, args.json, "webhooks")
    print(f"\nack p50 {results['ack']['p50_ms']} ms, p95 {results['ack']['p95_ms']} ms, p99 {results['ack']['p99_ms']} "
          f"ms at {results['ack']['rate_achieved']}/s; drain {results['drain']['events_per_s']} events/s "
          f"({results['drain']['steady_events_per_s']}/s from the first processed to the last); "
          f"exactly once: {results['check']['exactly_once']}")
    return 0 if results["check"]["exactly_once"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
