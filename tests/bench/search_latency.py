"""Search latency on a large catalog: GET /search for a selective, a medium and a non-selective word, a
two-word query, a quoted phrase, sorts and a filter. p50/p95/p99 over sequential requests, then wrk.

Run seed_catalog.py first: this script uses its database (var/bench-pg/pgdata, fairshelf_bench_catalog).

    .venv/bin/python tests/bench/search_latency.py            # 5–20 minutes, prints tables
    .venv/bin/python tests/bench/search_latency.py --help

The app is served by Granian like run_foundation.py does it (common.Server: MODE=development with
production-strength settings, WEB_WORKERS=2 here) with PAGE_CACHE_SECONDS=0, so every request renders the page
from PostgreSQL instead of the per-worker micro-cache. It only makes requests to 127.0.0.1 and stops what it
started.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
import search_explain  # noqa: E402
from catalog_text import MEDIUM, NON_SELECTIVE, QUERIES, SELECTIVE  # noqa: E402
from common import (  # noqa: E402
    Server,
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    postmaster_pid,
    server_env,
    write_results,
)
from foundation_load import CpuMeter, run_wrk, wrk_version  # noqa: E402
from psycopg import sql  # noqa: E402
from seed_catalog import add_database_arguments, bench_database  # noqa: E402

from app.settings import Settings  # noqa: E402

TARGET_MS = {"selective": 20.0, "non-selective": 60.0}  # p95 targets from the issue
LISTED = "status = 'published' AND deleted_at IS NULL"


# ------------------------------------------------------------------------------------------------------------
# What is measured


def cases() -> list[dict[str, Any]]:
    """Every measured request: a label, its query parameters, and any SQL condition its filters add."""
    ns = NON_SELECTIVE.word
    out: list[dict[str, Any]] = [{"label": label, "params": {"q": q}} for label, q in QUERIES]
    out += [
        {"label": "non-selective, sort=new", "params": {"q": ns, "sort": "new"}},
        {"label": "non-selective, sort=price_asc", "params": {"q": ns, "sort": "price_asc"}},
        {"label": "non-selective, type=audio&price=paid",
         "params": {"q": ns, "type": "audio", "price": "paid"},
         "extra_sql": "type = 'audio' AND price_cents > 0"},
        {"label": "selective, sort=new", "params": {"q": SELECTIVE.word, "sort": "new"}},
        {"label": "typo (did you mean)", "params": {"q": MEDIUM.word[:3] + MEDIUM.word[4:]}},  # 'lulaby'
        {"label": "no query (browse, sort=new)", "params": {}},
    ]
    for c in out:
        c["path"] = "/search" + ("?" + urlencode(c["params"]) if c["params"] else "")
    return out


def count_matches(conn: psycopg.Connection[Any], case: dict[str, Any]) -> int:
    where, args = [LISTED], []
    if case["params"].get("q"):
        where.append("search_vector @@ websearch_to_tsquery('english', %s)")
        args.append(case["params"]["q"])
    if case.get("extra_sql"):
        where.append(case["extra_sql"])
    return conn.execute(f"SELECT count(*) FROM items WHERE {' AND '.join(where)}", args).fetchone()[0]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1))]


def summarize(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
            "mean_ms": round(statistics.fmean(ms), 1)}


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    t = time.perf_counter()
    response = client.get(path)
    response.read()
    return (time.perf_counter() - t) * 1000, response


def sequential(client: httpx.Client, case: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up requests (discarded), then up to `args.requests` more, one at a time, stopping early after
    `args.case_seconds`. Latency is measured in the client, until the last byte of the body."""
    def path(i: int) -> str:
        return case["path"] + (f"{'&' if '?' in case['path'] else '?'}_bench={i}" if args.vary else "")

    stop_warmup = time.monotonic() + args.case_seconds / 4
    for i in range(args.warmup):
        timed_get(client, path(i))
        if time.monotonic() > stop_warmup:
            break
    ms: list[float] = []
    statuses: dict[str, int] = {}
    sizes: list[int] = []
    stop = time.monotonic() + args.case_seconds
    for i in range(args.requests):
        elapsed, response = timed_get(client, path(args.warmup + i))
        ms.append(elapsed)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        sizes.append(len(response.content))
        if time.monotonic() > stop and i + 1 >= args.min_requests:
            break
    return {**summarize(ms), "statuses": statuses, "kib": round(statistics.fmean(sizes) / 1024, 1)}


def interleaved(client: httpx.Client, chosen: list[dict[str, Any]], rounds: int,
                seconds: float) -> dict[str, dict[str, Any]]:
    """Every case once per round, in turn: what a mixed workload sees (plan caches, shared buffers)."""
    ms: dict[str, list[float]] = {c["label"]: [] for c in chosen}
    stop = time.monotonic() + seconds
    for _ in range(rounds):
        for c in chosen:
            elapsed, response = timed_get(client, c["path"])
            if response.status_code == 200:
                ms[c["label"]].append(elapsed)
        if time.monotonic() > stop:
            break
    return {label: summarize(values) for label, values in ms.items() if values}


def page_two(client: httpx.Client, case: dict[str, Any]) -> dict[str, Any] | None:
    """The first page's link to the next one (a keyset cursor), as a case of its own."""
    match = re.search(r'href="(/search\?[^"]*cursor=[^"]*)"', client.get(case["path"]).text)
    if not match:
        return None
    return {"label": case["label"] + ", page 2", "params": {}, "path": html.unescape(match.group(1)),
            "matches": case["matches"]}


class PgCpuMeter(CpuMeter):
    """CpuMeter that also counts PostgreSQL processes that ended meanwhile (parallel query workers live for
    one query): the CPU of the postmaster's reaped children is added to that of its live processes."""

    def _snapshot(self) -> dict[str, float]:
        snapshot = super()._snapshot()
        if self.postmaster_pid:
            try:
                t = psutil.Process(self.postmaster_pid).cpu_times()
                snapshot["postgres"] += t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        return snapshot


# ------------------------------------------------------------------------------------------------------------
# The database


def set_shared_buffers(args: argparse.Namespace, url: str) -> str:
    """ALTER SYSTEM SET shared_buffers on the embedded bench server (it stays so), restarting it if needed."""
    from app.db import embedded

    if args.admin_url:
        raise SystemExit("--shared-buffers only changes the embedded bench server")
    with psycopg.connect(url, autocommit=True) as conn:
        if args.shared_buffers == "default":
            conn.execute("ALTER SYSTEM RESET shared_buffers")
        else:
            value = sql.Literal(args.shared_buffers)
            conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(value))
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        restart = conn.execute(
            "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'").fetchone()[0]
    if restart:
        log(f"restarting the bench PostgreSQL for shared_buffers = {args.shared_buffers}")
        embedded.stop(args.pgdata)
        url = bench_database(args.pgdata, args.database)
    return url


def prepare(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    """The bench database, migrated to head, with every case's match count."""
    from app.db.migrate import upgrade

    url = bench_database(args.pgdata, args.database, args.admin_url)
    if args.shared_buffers:
        url = set_shared_buffers(args, url)
    version = "SELECT version_num FROM alembic_version"
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute(version).fetchone()
    upgrade(Settings(mode="test", database_url=url))  # the app expects the head revision
    with psycopg.connect(url, autocommit=True) as conn:
        after = conn.execute(version).fetchone()
        if before != after:
            log(f"migrated {before[0]} → {after[0]}; VACUUM ANALYZE items")
            conn.execute("VACUUM ANALYZE items")
        listed = conn.execute(f"SELECT count(*) FROM items WHERE {LISTED}").fetchone()[0]
        if listed == 0:
            raise SystemExit(f"{args.database} has no listed items: run tests/bench/seed_catalog.py first")
        log(f"{listed:,} listed items; counting each case's matches")
        chosen = cases()
        for c in chosen:
            c["matches"] = count_matches(conn, c)
    return url, chosen


def pg_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
            "server_version", "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost",
            "max_parallel_workers_per_gather", "jit")}


# ------------------------------------------------------------------------------------------------------------
# Orchestration


def measure(server: Server, chosen: list[dict[str, Any]], args: argparse.Namespace, meter: PgCpuMeter,
            wrk: str | None) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as client:
        probe = client.get("/search", params={"q": "x"})
        if probe.status_code != 200:
            raise SystemExit(f"GET /search?q=x answered {probe.status_code}: the search page is not there "
                             f"yet\n{server.log_tail()}")
        second = page_two(client, chosen[2])
        if second:
            chosen.insert(3, second)
        log(f"sequential: {args.warmup} warm-up + up to {args.requests} requests per case "
            f"(at most ~{args.case_seconds:.0f}s each)")
        for c in chosen:
            meter.start()
            t = time.monotonic()
            c["sequential"] = s = sequential(client, c, args)
            cpu = meter.stop(s["n"])
            pg_seconds = cpu["postgres_cores"] * (time.monotonic() - t)
            cpu["pg_cpu_ms_per_request"] = round(pg_seconds / s["n"] * 1000, 2)
            s["cpu"] = cpu
            log(f"  {c['label']:<40} n={s['n']:<4} p50 {s['p50_ms']:7.1f}  p95 {s['p95_ms']:7.1f}  "
                f"p99 {s['p99_ms']:7.1f} ms  {s['statuses']}")
        if args.rounds:
            log(f"interleaved: up to {args.rounds} rounds of every case in turn "
                f"(~{args.case_seconds * 2:.0f}s)")
            mixed = interleaved(client, chosen, args.rounds, args.case_seconds * 2)
            for c in chosen:
                c["interleaved"] = mixed.get(c["label"])
    if wrk is None:
        return
    for c in chosen if args.wrk_cases == "all" else chosen[:3]:
        log(f"wrk: {c['label']}, {args.wrk_connections} connections, 2s warm-up + {args.wrk_seconds}s")
        run_wrk(server.base + c["path"], args.wrk_connections, 2, 1)
        meter.start()
        c["wrk"] = run_wrk(server.base + c["path"], args.wrk_connections, args.wrk_seconds, 1)
        c["wrk"]["cpu"] = meter.stop(c["wrk"]["requests"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = wrk_version() if args.wrk_seconds > 0 else None
    if args.wrk_seconds > 0 and wrk is None:
        log("wrk is not installed (sudo apt-get install -y wrk): the throughput runs are skipped")
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info("granian", "litestar", "sqlalchemy", "psycopg"), "wrk": wrk,
                    "loadavg_at_start": load_at_start()},
        "params": {k: str(v) for k, v in vars(args).items()},
    }
    url, chosen = prepare(args)
    results["postgres"] = pg_settings(url)
    log(f"PostgreSQL: {results['postgres']}")
    workdir = make_workdir("fairshelf-search-bench-")
    extra = {"PAGE_CACHE_SECONDS": "0", **dict(args.server_env)}
    server = Server(url, args.workers, workdir / "granian.log", extra)
    meter = PgCpuMeter(server, None if args.admin_url else postmaster_pid(args.pgdata))
    try:
        log(f"starting granian with {args.workers} worker(s), "
            f"PAGE_CACHE_SECONDS={extra['PAGE_CACHE_SECONDS']}")
        server.start()
        measure(server, chosen, args, meter, wrk)
        results["rss_after"] = server.memory()
    except SystemExit:
        raise
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {results['error']}\n--- granian log ---\n{server.log_tail()}")
    finally:
        server.stop()
    if args.explain and "error" not in results:
        log("EXPLAIN (ANALYZE, BUFFERS) of each case's SQL, captured in-process")
        settings = Settings.from_env(server_env(url, server.port, 1, extra), env_file=None)
        try:
            results["explain"] = search_explain.explain_cases(
                url, settings, [c for c in chosen if "page 2" not in c["label"]],
                None if str(args.json) == "-" else args.json)
        except Exception as exc:  # optional: the HTTP figures stand on their own
            results["explain"] = {"error": f"{type(exc).__name__}: {exc}"}
    results["cases"] = [{k: v for k, v in c.items() if k != "extra_sql"} for c in chosen]
    return results


def report(results: dict[str, Any]) -> str:
    pg, machine = results.get("postgres", {}), results["machine"]
    lines = ["", f"PostgreSQL {pg.get('server_version')}, shared_buffers {pg.get('shared_buffers')}, "
                 f"work_mem {pg.get('work_mem')}; {results['params']['workers']} Granian workers; "
                 f"load average at start {machine['loadavg_at_start']}",
             "", "== GET /search, sequential: one request at a time, ms until the last byte ==",
             f"  {'case':<40} {'matches':>9} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'KiB':>5} "
             f"{'app ms':>6} {'pg ms':>7} {'other':>5}  target"]
    for c in results["cases"]:
        s = c.get("sequential")
        if not s:
            continue
        target = TARGET_MS.get(c["label"])
        verdict = f"p95 ≤ {target:.0f}: {'ok' if s['p95_ms'] <= target else 'MISSED'}" if target else ""
        bad = {k: v for k, v in s["statuses"].items() if k != "200"}
        cpu = s["cpu"]
        lines.append(f"  {c['label']:<40} {c['matches']:>9,} {s['n']:>4} {s['p50_ms']:>7.1f} "
                     f"{s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['max_ms']:>7.1f} {s['kib']:>5.1f} "
                     f"{cpu.get('app_cpu_ms_per_request', 0):>6.1f} {cpu['pg_cpu_ms_per_request']:>7.1f} "
                     f"{cpu['other_cores']:>5.2f}  {verdict}" + (f"  non-200: {bad}" if bad else ""))
    lines.append("  app ms / pg ms: CPU per request in the Granian workers / in PostgreSQL; "
                 "other: cores busy with work this script did not start (it skews the figures)")
    if any(c.get("interleaved") for c in results["cases"]):
        lines += ["", "== interleaved: every case in turn, round after round =="]
        for c in results["cases"]:
            s = c.get("interleaved")
            if s:
                lines.append(f"  {c['label']:<40} {'':>9} {s['n']:>4} {s['p50_ms']:>7.1f} "
                             f"{s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['max_ms']:>7.1f}")
    if any(c.get("wrk") for c in results["cases"]):
        lines += ["", "== wrk, closed loop ==",
                  f"  {'case':<40} {'req/s':>7} {'p50':>7} {'p99':>7} {'app cores':>9} {'pg cores':>8} "
                  f"{'other':>6} {'app ms/req':>10}"]
        for c in results["cases"]:
            w = c.get("wrk")
            if w and not w["requests"]:
                lines.append(f"  {c['label']:<40} no request finished within {w['seconds']:.0f}s "
                             f"(timeouts and errors: {w['socket_errors']})")
            elif w:
                cpu = w["cpu"]
                lines.append(f"  {c['label']:<40} {w['rps']:>7.1f} {w['p50_ms']:>7.1f} {w['p99_ms']:>7.1f} "
                             f"{cpu['app_cores']:>9.2f} {cpu['postgres_cores']:>8.2f} "
                             f"{cpu['other_cores']:>6.2f} "
                             f"{cpu.get('app_cpu_ms_per_request', 0):>10.2f}"
                             + (f"  errors {w['socket_errors']}, non-2xx {w['non_2xx_3xx']}"
                                if w["socket_errors"] or w["non_2xx_3xx"] else ""))
    if results.get("explain"):
        lines += search_explain.report(results["explain"])
    if "error" in results:
        lines += ["", f"FAILED: {results['error']}"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="Granian workers (default 2)")
    p.add_argument("--requests", type=int, default=200, help="sequential requests per case (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up requests per case, discarded (default 20)")
    p.add_argument("--case-seconds", type=float, default=60,
                   help="stop a case's sequential requests after this long, once it has --min-requests "
                        "(default 60)")
    p.add_argument("--min-requests", type=int, default=20, help="see --case-seconds (default 20)")
    p.add_argument("--rounds", type=int, default=30,
                   help="interleaved rounds: every case once per round (default 30; 0 skips)")
    p.add_argument("--vary", action="store_true",
                   help="add a changing, ignored parameter (_bench=N) to every sequential request")
    p.add_argument("--wrk-seconds", type=int, default=10,
                   help="wrk seconds per case (default 10; 0 skips wrk)")
    p.add_argument("--wrk-connections", type=int, default=8, help="wrk connections (default 8)")
    p.add_argument("--wrk-cases", choices=("words", "all"), default="words",
                   help="run wrk for the three words (default) or for every case")
    p.add_argument("--shared-buffers", default="",
                   help="set shared_buffers on the embedded bench server (e.g. 1GB, or 'default') and "
                        "restart it; it stays so for later runs (default: leave it alone)")
    p.add_argument("--no-explain", dest="explain", action="store_false",
                   help="skip EXPLAIN (ANALYZE, BUFFERS) of the captured SQL")
    add_database_arguments(p)
    add_shared_arguments(p, "extra environment for Granian (repeatable), e.g. DB_POOL_SIZE=4")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(report(results), flush=True)
    write_results(results, args.json, "search-latency")
    missed = [c["label"] for c in results["cases"] if c["label"] in TARGET_MS and c.get("sequential")
              and c["sequential"]["p95_ms"] > TARGET_MS[c["label"]]]
    if missed:
        print(json.dumps({"p95_target_missed": missed}))
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
