"""Foundation benchmark: home page throughput, login (Argon2id) verifications, and RSS per Granian worker.

Self-contained: starts a throwaway embedded PostgreSQL, migrates and seeds it, serves the app with Granian
(1 and 2 workers by default), drives load only at 127.0.0.1, stops everything it started and prints a table.

    .venv/bin/python tests/bench/run_foundation.py            # the full run (about 2 minutes)
    .venv/bin/python tests/bench/run_foundation.py --help     # durations, worker counts, clients …

Needs `wrk` for the home page (Debian/Ubuntu: `sudo apt-get install -y wrk`); without it a slower Python load
generator is used and the summary says so. See tests/bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# So `python tests/bench/run_foundation.py` can import the app, and the helpers next to this file.
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from common import (  # noqa: E402
    Server,
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    postmaster_pid,
    start_database,
    write_results,
)
from foundation_load import CpuMeter, argon2_ceiling, home_bench, python_load, wrk_version  # noqa: E402
from foundation_report import summary  # noqa: E402

from app.settings import Settings  # noqa: E402

BENCH_PASSWORD = "bench-password-{:02d}"
WRK_INSTALL_HINT = (
    "wrk is not installed. Install it for accurate home-page figures:\n"
    "    sudo apt-get install -y wrk        # Debian / Ubuntu\n"
    "    brew install wrk                   # macOS\n"
    "Falling back to the Python load generator (it shares the CPU with the server, so figures are a lower "
    "bound)."
)


# ------------------------------------------------------------------------------------------------------------
# Setup: database and accounts (the server is common.Server)


def prepare_database(workdir: Path, accounts: int) -> tuple[str, list[tuple[str, str]]]:
    """Start an embedded PostgreSQL under `workdir`, migrate, seed; return (url, [(username, password)])."""
    from app.seed import seed_demo

    url = start_database(workdir, "fairshelf_bench")
    settings = Settings(mode="test", database_url=url)  # default (production-strength) Argon2 parameters
    asyncio.run(seed_demo(settings))
    return url, asyncio.run(create_login_accounts(settings, accounts))


async def create_login_accounts(settings: Settings, count: int) -> list[tuple[str, str]]:
    """Verified accounts for the login benchmark, each with its own password hashed like a real sign-up."""
    from app.accounts.models import User
    from app.accounts.passwords import Passwords
    from app.db.engine import make_engine, make_sessionmaker

    passwords = Passwords(settings)
    credentials = [(f"bench_user_{i:02d}", BENCH_PASSWORD.format(i)) for i in range(count)]
    hashes = await asyncio.gather(*(passwords.hash(pw) for _, pw in credentials))
    engine = make_engine(settings, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            for (username, _), password_hash in zip(credentials, hashes, strict=True):
                db.add(User(email=f"{username}@bench.fairshelf.localhost", username=username,
                            display_name=username.replace("_", " ").title(), password_hash=password_hash,
                            email_verified_at=datetime.now(UTC)))
            await db.commit()
    finally:
        await engine.dispose()
    return credentials


# ------------------------------------------------------------------------------------------------------------
# Orchestration


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = wrk_version()
    use_wrk = wrk is not None and not args.python_client
    if wrk is None and not args.python_client:
        print(WRK_INSTALL_HINT, file=sys.stderr, flush=True)
    defaults = Settings()
    workdir = make_workdir("fairshelf-bench-")
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info("granian", "litestar"), "wrk": wrk},
        "argon2": {"memory_kib": defaults.argon2_memory_kib, "time_cost": defaults.argon2_time_cost,
                   "parallelism": defaults.argon2_parallelism},
        "db_pool": {"size": defaults.db_pool_size, "max_overflow": defaults.db_max_overflow},
        "params": {k: v for k, v in vars(args).items() if k != "json"},
        "runs": [],
    }
    results["machine"]["loadavg_at_start"] = load_at_start()
    t = time.monotonic()
    log(f"preparing PostgreSQL in {workdir} (migrate, seed, {args.accounts} login accounts)")
    database_url, credentials = prepare_database(workdir, args.accounts)
    log(f"database ready in {time.monotonic() - t:.1f}s; measuring raw Argon2id verifications "
        "(1 and 2 threads)")
    results["argon2"]["raw_verifications_per_s"] = argon2_ceiling()
    pg_pid = postmaster_pid(workdir / "pgdata")

    for workers in args.workers:
        server = Server(database_url, workers, workdir / f"granian-{workers}.log", dict(args.server_env))
        meter = CpuMeter(server, pg_pid)
        run_result: dict[str, Any] = {"workers": workers}
        results["runs"].append(run_result)
        try:
            log(f"starting granian with {workers} worker(s) on port {server.port}")
            server.start()
            run_result["rss_idle"] = server.memory()
            log(f"home page: {args.warmup}s warm-up, then {args.duration}s at {args.connections} connections")
            run_result["home"] = home_bench(server, args, use_wrk, meter)
            run_result["rss_after_home"] = server.memory()
            for mode in args.login_ips:
                log(f"login: {args.login_clients} clients, {mode} client IP(s), "
                    f"{args.login_warmup}s warm-up + {args.login_duration}s")
                run_result[f"login_{mode}_ip"] = asyncio.run(python_load(
                    server.base, "login", args.login_clients, args.login_warmup, args.login_duration,
                    credentials=credentials, distinct_ips=(mode == "distinct"), meter=meter))
            run_result["rss_after_login"] = server.memory()
        except Exception as exc:
            run_result["error"] = f"{type(exc).__name__}: {exc}"
            log(f"FAILED: {run_result['error']}\n--- granian log ---\n{server.log_tail()}")
        finally:
            server.stop()
    results["total_seconds"] = round(time.monotonic() - t, 1)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--workers", type=ints, default=[1, 2], help="Granian worker counts to run (default 1,2)")
    p.add_argument("--connections", type=int, default=64,
                   help="home page: concurrent connections (default 64)")
    p.add_argument("--duration", type=int, default=20, help="home page: measured seconds (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="home page: warm-up seconds, discarded (default 3)")
    p.add_argument("--wrk-threads", type=int, default=1,
                   help="wrk threads (default 1: leaves the CPUs to the server)")
    p.add_argument("--python-client", action="store_true",
                   help="use the Python load generator even if wrk exists")
    p.add_argument("--login-clients", type=int, default=8, help="login: concurrent clients (default 8)")
    p.add_argument("--login-duration", type=float, default=12,
                   help="login: measured seconds per mode (default 12)")
    p.add_argument("--login-warmup", type=float, default=2,
                   help="login: warm-up seconds, discarded (default 2)")
    p.add_argument("--login-ips", type=lambda s: [x for x in s.split(",") if x], default=["distinct", "same"],
                   help="login client-IP modes to run: distinct (X-Forwarded-For per client), same (all from "
                        "127.0.0.1); default distinct,same")
    p.add_argument("--accounts", type=int, default=16, help="login: distinct accounts (default 16)")
    add_shared_arguments(p, "extra environment for Granian (repeatable), e.g. MALLOC_MMAP_THRESHOLD_=1048576")
    args = p.parse_args(argv)
    if args.accounts < args.login_clients:
        p.error("--accounts must be at least --login-clients (each client logs in to accounts of its own)")
    if not set(args.login_ips) <= {"distinct", "same"}:
        p.error("--login-ips takes distinct and/or same")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(summary(results), flush=True)
    write_results(results, args.json, "foundation")
    return 1 if any("error" in r for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
