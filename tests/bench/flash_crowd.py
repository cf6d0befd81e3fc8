"""Flash crowd: 256 connections hammering one creator page (/@<username>) with the page micro-cache on,
against the same page uncached.

Self-contained: starts a throwaway embedded PostgreSQL with a small realistic catalogue in which one creator
has 40 published items (most with covers, so a page of 24 cards signs ~20 cover URLs), or uses
seed_catalog.py's 1M-item database with --catalog-db. It serves the real app with Granian and WEB_WORKERS=2
(the `app serve` command) and runs wrk against GET /@<username>:
  - cached: the app's default settings (PAGE_CACHE_SECONDS=2.0, PAGE_CACHE_STALE_SECONDS=30):
    `wrk -t2 -c256 -d30s --latency`;
  - uncached: PAGE_CACHE_SECONDS=0, at 256 connections and at 64, for the baseline throughput.
It first checks one anonymous answer's headers (Cache-Control, ETag, Vary) and that a conditional request with
If-None-Match gets 304, then prints a table and the targets: no errors, p99 <= 100 ms, >= 10x the uncached
throughput.

    .venv/bin/python tests/bench/flash_crowd.py          # about 2.5 minutes
    .venv/bin/python tests/bench/flash_crowd.py --help

Needs wrk (`sudo apt-get install -y wrk`). See README.md ("flash_crowd.py").
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
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
    catalog_db_url,
    decorate_catalog_db,
    fetch,
    other_servers,
    run_wrk,
    wrk_available,
)

from app.settings import Settings  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_SPEEDUP = 10.0


def raise_open_files(wanted: int) -> dict[str, int]:
    """Raise this process's soft limit on open files (wrk and Granian inherit it), up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return {"soft": soft, "hard": hard}


def check_headers(base: str, path: str) -> dict[str, Any]:
    """One anonymous GET (its caching headers), then the same GET with If-None-Match: its ETag."""
    status, headers, body = fetch(base + path)
    etag = headers.get("etag", "")
    again, again_headers, again_body = fetch(base + path, {"If-None-Match": etag}) if etag else (0, {}, b"")
    return {
        "status": status,
        "body_bytes": len(body),
        "cache_control": headers.get("cache-control"),
        "etag": etag,
        "vary": headers.get("vary"),
        "set_cookie": headers.get("set-cookie"),
        "conditional_status": again,
        "conditional_body_bytes": len(again_body),
        "conditional_etag": again_headers.get("etag"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = make_workdir("fairshelf-flash-crowd-")
    defaults = Settings()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info("granian", "litestar"),
        "params": {k: v for k, v in vars(args).items() if k != "json"},
        "open_files": raise_open_files(4 * args.connections + 1024),
        "runs": [],
    }
    results["machine"]["loadavg_at_start"] = load_at_start()
    if others := other_servers():
        log("WARNING: other Granian servers are running (not stopped by this script; they may take CPU):\n  "
            + "\n  ".join(others))
    t = time.monotonic()
    if args.catalog_db:
        from seed_catalog import DEFAULT_PGDATA

        url, pgdata = catalog_db_url(), DEFAULT_PGDATA
        catalogue = decorate_catalog_db(url)
    else:
        url, pgdata = start_database(workdir, "fairshelf_flash_crowd"), workdir / "pgdata"
        catalogue = build_catalogue(url)
    results["catalogue"] = vars(catalogue)
    path = f"/@{catalogue.creator_username}"
    log(f"database ready in {time.monotonic() - t:.1f}s: {catalogue.totals}; GET {path} "
        f"({catalogue.creator_items} published items)")
    pg_pid = postmaster_pid(pgdata)
    granian_args = ["--backlog", str(args.backlog)] if args.backlog else []
    cached_env = {"PAGE_CACHE_SECONDS": str(defaults.page_cache_seconds),  # the defaults, whatever .env says
                  "PAGE_CACHE_STALE_SECONDS": str(defaults.page_cache_stale_seconds)}
    plan = [("cached", cached_env, args.connections)]
    plan += [("uncached", {"PAGE_CACHE_SECONDS": "0"}, c) for c in args.uncached_connections]

    for mode, env, connections in plan:
        server = AsgiServer(url, args.workers, workdir / f"granian-{mode}-{connections}.log",
                            {**env, **dict(args.server_env)}, extra_args=granian_args)
        run_result: dict[str, Any] = {"mode": mode, "connections": connections, "workers": args.workers,
                                      "env": env}
        results["runs"].append(run_result)
        try:
            server.start()
            run_result["command"] = " ".join(server.command[1:])
            if mode == "cached":
                results["headers"] = h = check_headers(server.base, path)
                log(f"headers: Cache-Control {h['cache_control']!r}, ETag {h['etag']}, Vary {h['vary']!r}; "
                    f"If-None-Match -> {h['conditional_status']}")
            status, _, body = fetch(server.base + path)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            log(f"{mode}: {args.warmup}s warm-up, then {args.duration}s of wrk -t{args.wrk_threads} "
                f"-c{connections}")
            run_wrk(server.base + path, connections, args.warmup, args.wrk_threads)
            meter = CpuMeter(server, pg_pid)
            meter.start()
            run_result.update(run_wrk(server.base + path, connections, args.duration, args.wrk_threads))
            run_result["cpu"] = meter.stop(run_result["requests"])
            run_result["body_bytes"] = len(body)
            log(f"{mode} @{connections}: {run_result['rps']} req/s, p99 {run_result['p99_ms']} ms, errors "
                f"{run_result['errors']} + non-2xx/3xx {run_result['non_2xx_3xx']}, other CPU "
                f"{run_result['cpu']['other_cores']} cores")
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
        f"Flash crowd on /@{c['creator_username']} ({c['creator_items']} published items) — "
        f"{m['cpus']} CPUs, Python {m['python']}, granian {m['granian']}, litestar {m['litestar']}",
        f"{p['workers']} Granian workers; wrk -t{p['wrk_threads']} -d{p['duration']}s --latency after "
        f"{p['warmup']}s warm-up; open files limit {results['open_files']['soft']}",
    ]
    if h := results.get("headers"):
        conditional = "ok" if h["conditional_status"] == 304 else "EXPECTED 304"
        lines += [
            f"GET answer {h['status']} ({h['body_bytes']} bytes): Cache-Control: {h['cache_control']} | "
            f"ETag: {h['etag']} | Vary: {h['vary']} | Set-Cookie: {h['set_cookie'] or '(none)'}",
            f"GET with If-None-Match: {h['etag']} -> {h['conditional_status']} "
            f"({h['conditional_body_bytes']} bytes) {conditional}",
        ]
    header = (f"{'mode':<9} {'conn':>5} {'req/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'sock err':>8} {'non-2xx':>7}  {'app':>5} {'pg':>5} {'wrk':>5} {'other':>5} "
              f"{'CPU ms/req':>10}")
    lines += ["", header, "-" * len(header)]
    done = {}
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"{r['mode']:<9} {r['connections']:>5} FAILED: {r['error'][:90]}")
            continue
        done[(r["mode"], r["connections"])] = r
        cpu = r["cpu"]
        lines.append(
            f"{r['mode']:<9} {r['connections']:>5} {r['rps']:>9.1f} {r['p50_ms']:>7.1f} {r['p90_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {r['errors']:>8} {r['non_2xx_3xx']:>7}  "
            f"{cpu['app_cores']:>5.2f} {cpu['postgres_cores']:>5.2f} {cpu['client_cores']:>5.2f} "
            f"{cpu['other_cores']:>5.2f} {cpu.get('app_cpu_ms_per_request', float('nan')):>10.3f}")
    lines.append("(app/pg/wrk/other: cores busy during the measured window, out of "
                 f"{m['cpus']}; CPU ms/req: the app workers' CPU per request)")
    cached = done.get(("cached", p["connections"]))
    base = done.get(("uncached", p["connections"]))
    if cached:
        errors = cached["errors"] + cached["non_2xx_3xx"]
        p99_ok = cached["p99_ms"] <= TARGET_P99_MS
        lines += ["", "Targets (cached run):",
                  f"  no errors: {errors} {'met' if errors == 0 else 'MISSED'}",
                  f"  p99 <= {TARGET_P99_MS:.0f} ms: {cached['p99_ms']:.1f} ms "
                  f"{'met' if p99_ok else 'MISSED'}"]
        if not base:
            lines.append(f"  >= {TARGET_SPEEDUP:.0f}x uncached: no uncached run at {p['connections']} "
                         "connections to compare with")
        else:
            speedup = cached["rps"] / base["rps"]
            lines.append(f"  >= {TARGET_SPEEDUP:.0f}x uncached @{p['connections']}: {speedup:.1f}x "
                         f"({cached['rps']:.0f} vs {base['rps']:.0f} req/s) "
                         f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--workers", type=int, default=2, help="Granian workers, WEB_WORKERS (default 2)")
    p.add_argument("--connections", type=int, default=256,
                   help="wrk connections for the cached run (default 256)")
    p.add_argument("--uncached-connections", type=ints, default=[256, 64],
                   help="connection counts for the uncached baseline (default 256,64; '' skips it)")
    p.add_argument("--duration", type=int, default=30, help="measured seconds per run (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up seconds per run, discarded (default 3)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--backlog", type=int, default=0,
                   help="Granian --backlog (default: Granian's own, 1024, which allows 512 concurrent "
                        "requests per worker with 2 workers)")
    p.add_argument("--catalog-db", action="store_true",
                   help="use seed_catalog.py's 1M-item database (var/bench-pg): its busiest creator's page")
    add_shared_arguments(p, "extra environment for Granian (repeatable), e.g. PAGE_CACHE_STALE_SECONDS=5")
    args = p.parse_args(argv)
    if not wrk_available():
        p.error("wrk is not installed: sudo apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(summary(results), flush=True)
    write_results(results, args.json, "flash-crowd")
    return 1 if any("error" in r for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
