"""Item page throughput, uncached: Fairshelf against a minimal reference app doing the same work, in one run.

Self-contained: starts a throwaway embedded PostgreSQL with a small realistic catalogue (or, with
--catalog-db, the 1M-item database of seed_catalog.py), then, for each worker count, serves GET /i/<public id>
anonymously with Granian from
  - Fairshelf: the real app (`granian --interface asgi --factory app.main:app_from_env`), PAGE_CACHE_SECONDS=0
    so the in-process micro-cache is off and every request renders from PostgreSQL;
  - the reference: reference_item_app.py (psycopg_pool + Jinja2, no framework, no ORM) under the same Granian
    command and worker count, sending the same SQL and rendering the same template,
and drives each with wrk (64 connections, 3 s warm-up, 20 s measured). Before that it checks, with
PostgreSQL's statement log, that both send the same statements for one request, and that both bodies are the
same.

    .venv/bin/python tests/bench/item_page.py                # about 2 minutes, prints a table
    .venv/bin/python tests/bench/item_page.py --help

Needs wrk (`sudo apt-get install -y wrk`). See README.md ("item_page.py") for what the figures mean.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from common import (  # noqa: E402
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    postmaster_pid,
    start_database,
    write_results,
)
from foundation_load import CpuMeter  # noqa: E402
from page_bench import (  # noqa: E402
    AsgiServer,
    build_catalogue,
    capture_request_sql,
    catalog_db_url,
    decorate_catalog_db,
    fetch,
    other_servers,
    pg_log_path,
    run_wrk,
    with_statement_log,
    wrk_available,
)

SIDES = {
    "fairshelf": "app.main:app_from_env",
    "reference": "reference_item_app:app_from_env",
}
TARGET_RATIO = 0.60


def prepare(args: argparse.Namespace, workdir: Path) -> tuple[str, Path, Any]:
    """(database URL, PostgreSQL data folder, catalogue)."""
    if args.catalog_db:
        from seed_catalog import DEFAULT_PGDATA

        url = catalog_db_url()
        return url, DEFAULT_PGDATA, decorate_catalog_db(url)
    url = start_database(workdir, "fairshelf_item_page")
    return url, workdir / "pgdata", build_catalogue(url, creators=args.creators, items=args.items)


def server_for(side: str, url: str, workers: int, workdir: Path, extra: dict[str, str]) -> AsgiServer:
    env = {"PAGE_CACHE_SECONDS": "0", **extra}  # micro-cache off: every request renders, as in the reference
    return AsgiServer(url, workers, workdir / f"{side}-{workers}-{time.monotonic_ns()}.log", env,
                      target=SIDES[side])


def check_same_work(url: str, pgdata: Path, path: str, workdir: Path,
                    extra: dict[str, str]) -> dict[str, Any]:
    """One request to each side with statement logging on their connections: the statements, the bodies."""
    seen: dict[str, Any] = {}
    for side in SIDES:
        statements, body, headers = capture_request_sql(
            lambda side=side: server_for(side, with_statement_log(url), 1, workdir, extra), path,
            pg_log_path(pgdata))
        seen[side] = {"statements": statements, "body": body, "headers": headers}
    a, r = seen["fairshelf"], seen["reference"]
    same_sql = a["statements"] == r["statements"]  # text and parameter values, in order
    # BASE_URL carries each server's port (canonical and og:url links); the rest must match byte for byte.
    strip = lambda b: re.sub(rb"http://127\.0\.0\.1:\d+", b"BASE", b)  # noqa: E731
    return {
        "same_statements": same_sql,
        "statements": {side: v["statements"] for side, v in seen.items()},
        "body_bytes": {side: len(v["body"]) for side, v in seen.items()},
        "same_body": strip(a["body"]) == strip(r["body"]),
        "same_header_names": sorted(a["headers"]) == sorted(r["headers"]),
        "headers": {side: {k: v for k, v in v["headers"].items() if k not in ("date", "connection")}
                    for side, v in seen.items()},
    }


def measure(server: AsgiServer, path: str, args: argparse.Namespace, pg_pid: int | None) -> dict[str, Any]:
    url = server.base + path
    status, headers, body = fetch(url)
    if status != 200 or b"<html" not in body:
        raise RuntimeError(f"GET {path} answered {status}, not the item page")
    run_wrk(url, args.connections, args.warmup, args.wrk_threads)
    meter = CpuMeter(server, pg_pid)
    meter.start()
    result = run_wrk(url, args.connections, args.duration, args.wrk_threads)
    result["cpu"] = meter.stop(result["requests"])
    result["body_bytes"] = len(body)
    result["worker_pids"] = server.worker_pids()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = make_workdir("fairshelf-item-page-")
    extra = dict(args.server_env)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info("granian", "litestar", "sqlalchemy", "psycopg", "psycopg-pool", "jinja2")},
        "params": {k: v for k, v in vars(args).items() if k != "json"},
        "runs": [],
    }
    results["machine"]["loadavg_at_start"] = load_at_start()
    if others := other_servers():
        log("WARNING: other Granian servers are running (not stopped by this script; they may take CPU):\n  "
            + "\n  ".join(others))
    t = time.monotonic()
    log("preparing PostgreSQL and the catalogue"
        + (" (the seed_catalog.py database)" if args.catalog_db else ""))
    url, pgdata, catalogue = prepare(args, workdir)
    results["catalogue"] = vars(catalogue)
    path = f"/i/{catalogue.item_public_id}"
    log(f"database ready in {time.monotonic() - t:.1f}s: {catalogue.totals}; measuring GET {path} "
        f"({catalogue.item})")
    pg_pid = postmaster_pid(pgdata)

    if not args.no_sql_check:
        log("checking both sides send the same SQL and the same body (one request each, statements logged)")
        results["same_work"] = check = check_same_work(url, pgdata, path, workdir, extra)
        log(f"same statements: {check['same_statements']} ({len(check['statements']['fairshelf'])} vs "
            f"{len(check['statements']['reference'])}); body bytes {check['body_bytes']}; same body: "
            f"{check['same_body']}; same header names: {check['same_header_names']}")
        for side, statements in check["statements"].items():
            print(f"  {side}:\n" + "\n".join(f"    {s[:150]}" for s in statements), flush=True)

    # Rounds alternate which side goes first, so a drift in background load doesn't favour one side.
    plan = [(workers, side, n) for workers in args.workers for n in range(args.rounds)
            for side in (list(SIDES) if (n % 2 == 0) == (args.order == "fr") else list(reversed(SIDES)))]
    for workers, side, n in plan:
        server = server_for(side, url, workers, workdir, extra)
        run_result: dict[str, Any] = {"side": side, "workers": workers, "round": n + 1}
        results["runs"].append(run_result)
        try:
            log(f"{side}: granian with {workers} worker(s), round {n + 1}/{args.rounds}; {args.warmup}s "
                f"warm-up, then {args.duration}s of wrk -t{args.wrk_threads} -c{args.connections}")
            server.start()
            run_result["command"] = " ".join(server.command[1:])
            run_result.update(measure(server, path, args, pg_pid))
            log(f"{side}, {workers} worker(s): {run_result['rps']} req/s, p50 {run_result['p50_ms']} ms, "
                f"p99 {run_result['p99_ms']} ms, other CPU {run_result['cpu']['other_cores']} cores")
        except Exception as exc:
            run_result["error"] = f"{type(exc).__name__}: {exc}"
            log(f"FAILED: {run_result['error']}\n--- granian log ---\n{server.log_tail()}")
        finally:
            server.stop()
    results["total_seconds"] = round(time.monotonic() - t, 1)
    return results


def summary(results: dict[str, Any]) -> str:
    m, c, p = results["machine"], results["catalogue"], results["params"]
    lines = [
        "",
        f"Item page, uncached — {m['cpus']} CPUs, Python {m['python']}, granian {m['granian']}, litestar "
        f"{m['litestar']}, sqlalchemy {m['sqlalchemy']}, psycopg {m['psycopg']}, "
        f"psycopg-pool {m['psycopg-pool']}",
        f"GET /i/{c['item_public_id']}: {c['item']}; catalogue {c['totals']}",
        f"wrk -t{p['wrk_threads']} -c{p['connections']} -d{p['duration']}s after {p['warmup']}s warm-up; "
        "Fairshelf with PAGE_CACHE_SECONDS=0; client, servers and PostgreSQL share this machine.",
    ]
    if check := results.get("same_work"):
        same_body = "identical" if check["same_body"] else "DIFFERENT"
        lines.append(f"Same SQL for one request: {'yes' if check['same_statements'] else 'NO'} "
                     f"({len(check['statements']['fairshelf'])} statements); body bytes: Fairshelf "
                     f"{check['body_bytes']['fairshelf']}, reference {check['body_bytes']['reference']} "
                     f"({same_body} apart from the port in BASE_URL); same response header names: "
                     f"{'yes' if check['same_header_names'] else 'NO'}")
    header = (f"{'workers':>7} {'#':>2} {'side':<10} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
              f"{'max ms':>7} {'errors':>6} {'body B':>7}  {'app':>5} {'pg':>5} {'wrk':>5} {'other':>5} "
              f"{'CPU ms/req':>10}")
    lines += ["", header, "-" * len(header)]
    by: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"{r['workers']:>7} {r['round']:>2} {r['side']:<10} FAILED: {r['error'][:80]}")
            continue
        by.setdefault((r["workers"], r["side"]), []).append(r)
        cpu, errors = r["cpu"], r["errors"] + r["non_2xx_3xx"]
        lines.append(
            f"{r['workers']:>7} {r['round']:>2} {r['side']:<10} {r['rps']:>8.1f} {r['p50_ms']:>7.1f} "
            f"{r['p90_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {errors:>6} {r['body_bytes']:>7}  "
            f"{cpu['app_cores']:>5.2f} {cpu['postgres_cores']:>5.2f} {cpu['client_cores']:>5.2f} "
            f"{cpu['other_cores']:>5.2f} {cpu.get('app_cpu_ms_per_request', float('nan')):>10.2f}")
    lines += ["(app/pg/wrk/other: cores busy during the measured window; CPU ms/req: the server's workers' "
              "CPU per request)", ""]
    for w in p["workers"]:
        f, r = by.get((w, "fairshelf")), by.get((w, "reference"))
        if f and r:
            f_rps, r_rps = median(x["rps"] for x in f), median(x["rps"] for x in r)
            f_cpu = median(x["cpu"].get("app_cpu_ms_per_request", 0) for x in f)
            r_cpu = median(x["cpu"].get("app_cpu_ms_per_request", 0) for x in r)
            ratio = f_rps / r_rps
            verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
            of = f"median of {len(f)} rounds: " if len(f) > 1 else ""
            lines.append(f"{w} worker(s): {of}Fairshelf {f_rps:.0f} req/s = {ratio:.0%} of the reference's "
                         f"{r_rps:.0f} (target >= {TARGET_RATIO:.0%}: {verdict}); CPU per request "
                         f"{f_cpu:.2f} vs {r_cpu:.2f} ms")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--workers", type=ints, default=[1, 2], help="Granian worker counts (default 1,2)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--duration", type=int, default=20, help="measured seconds per side (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up seconds per side, discarded (default 3)")
    p.add_argument("--wrk-threads", type=int, default=1,
                   help="wrk threads (default 1: leaves the CPUs to the servers)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure each side this many times per worker count, alternating which goes first; "
                        "the ratio uses the medians (default 1)")
    p.add_argument("--order", choices=("fr", "rf"), default="fr",
                   help="which side goes first in the first round: fr, Fairshelf (default); rf, the "
                        "reference")
    p.add_argument("--items", type=int, default=4000, help="items in the throwaway catalogue (default 4,000)")
    p.add_argument("--creators", type=int, default=150,
                   help="creators in the throwaway catalogue (default 150)")
    p.add_argument("--catalog-db", action="store_true",
                   help="use seed_catalog.py's 1M-item database (var/bench-pg) instead of a throwaway one; "
                        "adds a project, cover, version and file to one item there (once)")
    p.add_argument("--no-sql-check", action="store_true", help="skip the same-SQL / same-body check")
    add_shared_arguments(p, "extra environment for both servers (repeatable), e.g. DB_POOL_SIZE=5")
    args = p.parse_args(argv)
    if not wrk_available():
        p.error("wrk is not installed: sudo apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(summary(results), flush=True)
    write_results(results, args.json, "item-page")
    return 1 if any("error" in r for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
