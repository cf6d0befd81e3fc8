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
import atexit
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # so `python tests/bench/run_foundation.py` can import the app

import httpx  # noqa: E402
import psutil  # noqa: E402

from app.settings import Settings  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
CSRF_COOKIE = "fairshelf_csrf"
BENCH_PASSWORD = "bench-password-{:02d}"
WRK_INSTALL_HINT = (
    "wrk is not installed. Install it for accurate home-page figures:\n"
    "    sudo apt-get install -y wrk        # Debian / Ubuntu\n"
    "    brew install wrk                   # macOS\n"
    "Falling back to the Python load generator (it shares the CPU with the server, so figures are a lower bound)."
)


# ----------------------------------------------------------------------------------------------------------------
# Setup: database, accounts, server


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare_database(workdir: Path, accounts: int) -> tuple[str, list[tuple[str, str]]]:
    """Start an embedded PostgreSQL under `workdir`, migrate, seed; return (url, [(username, password)])."""
    from app.db import embedded
    from app.db.migrate import upgrade
    from app.seed import seed_demo

    admin_url = embedded.start(workdir / "pgdata", delete_on_exit=True)
    url = embedded.ensure_database(admin_url, "fairshelf_bench", fresh=True)
    settings = Settings(mode="test", database_url=url)  # default (production-strength) Argon2 parameters
    upgrade(settings)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, port: int, workers: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment for Granian: development mode (no SMTP needed) with production-strength settings."""
    defaults = Settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANIAN_")}
    for f in Settings.__dataclass_fields__:  # nothing from the caller's shell leaks into the measured settings
        env.pop(f.upper(), None)
    env.update(
        MODE="development",
        DEBUG="false",
        DEV_MAILBOX="true",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        BASE_URL=f"http://127.0.0.1:{port}",
        WEB_WORKERS=str(workers),
        HOST="127.0.0.1",
        PORT=str(port),
        # Spelled out so an .env file cannot make the benchmark cheaper than production.
        ARGON2_MEMORY_KIB=str(defaults.argon2_memory_kib),
        ARGON2_TIME_COST=str(defaults.argon2_time_cost),
        ARGON2_PARALLELISM=str(defaults.argon2_parallelism),
        DB_POOL_SIZE=str(defaults.db_pool_size),
        DB_MAX_OVERFLOW=str(defaults.db_max_overflow),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)  # --server-env, for A/B experiments (e.g. MALLOC_MMAP_THRESHOLD_)
    return env


@dataclass
class Server:
    """One Granian process tree serving the app on 127.0.0.1."""

    database_url: str
    workers: int
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40.0) -> None:
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "app.main:app_from_env",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--no-ws", "--log-level", "warning",
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=server_env(self.database_url, self.port, self.workers, self.extra_env),
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"granian exited with {self.proc.returncode}:\n{self.log_tail()}")
            if len(self.worker_pids()) >= self.workers and self._healthy():
                # Every worker answers: /health reaches whichever worker accepts, so ask a few times.
                if all(self._healthy() for _ in range(4 * self.workers)):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"granian did not become healthy within {timeout:.0f}s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        """Granian's worker processes (children of the main process); the main process if it has none."""
        if self.proc is None:
            return []
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children]

    def memory(self) -> dict[str, Any]:
        assert self.proc is not None
        return {"main": proc_memory(self.proc.pid), "workers": [proc_memory(p) for p in self.worker_pids()]}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Granian stops its workers on SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session we created for it, nothing else
                self.proc.wait(timeout=5)
        self._log.close()
        self.proc = None


def proc_memory(pid: int) -> dict[str, Any]:
    """VmRSS and VmHWM (peak RSS) in MiB from /proc/<pid>/status."""
    values: dict[str, Any] = {"pid": pid}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key.lower() + "_mib"] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return values


class CpuMeter:
    """CPU seconds spent during a measured window by the app workers, PostgreSQL and the load generator.

    All share this machine's cores, so this shows who the cores went to (and the app's CPU per request).
    """

    def __init__(self, server: Server, postmaster_pid: int | None) -> None:
        self.server, self.postmaster_pid = server, postmaster_pid

    def _snapshot(self) -> dict[str, float]:
        def cpu(procs: list[psutil.Process]) -> float:
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            return total

        pg: list[psutil.Process] = []
        if self.postmaster_pid:
            try:
                root = psutil.Process(self.postmaster_pid)
                pg = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        this, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "app": cpu([psutil.Process(pid) for pid in self.server.worker_pids()]),
            "postgres": cpu(pg),
            # wrk is a finished child by the time we look; the Python client runs in this process.
            "client": this.ru_utime + this.ru_stime + children.ru_utime + children.ru_stime,
            "machine": machine_busy_seconds(),
            "wall": time.monotonic(),
        }

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self, requests: int) -> dict[str, float]:
        after = self._snapshot()
        d = {k: after[k] - self.before[k] for k in after}
        wall = d.pop("wall")
        # Whatever else ran on the machine meanwhile (other test suites, …): it skews the figures.
        d["other"] = max(0.0, d.pop("machine") - d["app"] - d["postgres"] - d["client"])
        out = {f"{k}_cores": round(v / wall, 2) for k, v in d.items()}
        if requests:
            out["app_cpu_ms_per_request"] = round(d["app"] / requests * 1000, 2)
        return out


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy since boot (from /proc/stat), to spot other load on the machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------------------------------------------
# Home page: wrk (or the Python fallback)


def wrk_version() -> str | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].strip() if (out.stdout + out.stderr) else "wrk"


def run_wrk(url: str, connections: int, seconds: int, threads: int) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(BENCH / "wrk_report.lua"), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    match = re.search(r"^WRK_JSON (\{.*\})$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(match.group(1))
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "tool": "wrk",
        "command": " ".join(command),
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "socket_errors": errors,
        "non_2xx_3xx": raw["non_2xx_3xx"],
    }


def home_bench(server: Server, args: argparse.Namespace, use_wrk: bool, meter: CpuMeter) -> dict[str, Any]:
    url = server.base + "/"
    check = httpx.get(url, timeout=10)
    if check.status_code != 200 or "<html" not in check.text.lower():
        raise RuntimeError(f"GET / answered {check.status_code}, not the home page")
    if use_wrk:
        run_wrk(url, args.connections, args.warmup, args.wrk_threads)
        meter.start()
        result = run_wrk(url, args.connections, args.duration, args.wrk_threads)
    else:
        result = asyncio.run(python_load(server.base, "home", args.connections, args.warmup, args.duration,
                                         meter=meter))
        result["tool"] = "python (httpx) — lower bound, the client competes for the CPU"
    result["cpu"] = meter.stop(result["requests"])
    return result


# ----------------------------------------------------------------------------------------------------------------
# Closed-loop Python load generator: the login benchmark, and the home page when wrk is missing


async def python_load(base: str, kind: str, clients: int, warmup: float, duration: float,
                      credentials: list[tuple[str, str]] | None = None, distinct_ips: bool = False,
                      meter: CpuMeter | None = None) -> dict[str, Any]:
    """`clients` connections each sending the next request as soon as the last is answered."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    problems: dict[str, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration

    def record(t0: float, t1: float, status: str) -> None:
        if t0 >= measure_from and t1 <= stop_at:
            latencies.append(t1 - t0)
            statuses[status] = statuses.get(status, 0) + 1

    async def client(i: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=30, limits=limits) as c:
            if kind == "home":
                while time.monotonic() < stop_at:
                    t0 = time.monotonic()
                    try:
                        r = await c.get("/")
                        record(t0, time.monotonic(), str(r.status_code))
                    except httpx.HTTPError as exc:
                        record(t0, time.monotonic(), type(exc).__name__)
                return
            assert credentials
            page = await c.get("/login")
            token = page.cookies.get(CSRF_COOKIE)
            if page.status_code != 200 or not token:
                raise RuntimeError(f"GET /login gave {page.status_code} and no {CSRF_COOKIE} cookie")
            # Each client owns its accounts, so no two requests race for the same account's throttle row.
            mine = credentials[i::clients]
            headers = {"cookie": f"{CSRF_COOKIE}={token}", "x-csrf-token": token}
            if distinct_ips:
                # Granian's peer is 127.0.0.1, a trusted proxy, so the app believes X-Forwarded-For: this is how
                # distinct people arrive through Caddy in production.
                headers["x-forwarded-for"] = f"198.51.100.{10 + i}"
            n = 0
            while time.monotonic() < stop_at:
                username, password = mine[n % len(mine)]
                n += 1
                c.cookies.clear()  # send only the CSRF cookie: every request is a fresh log-in
                t0 = time.monotonic()
                try:
                    r = await c.post("/login", headers=headers, data={
                        "identifier": username, "password": password, "next": "/", "_csrf_token": token})
                except httpx.HTTPError as exc:
                    record(t0, time.monotonic(), type(exc).__name__)
                    continue
                t1 = time.monotonic()
                record(t0, t1, str(r.status_code))
                if r.status_code == 303 and (r.headers.get("location") != "/" or "fairshelf_session=" not in
                                             r.headers.get("set-cookie", "")):
                    key = "303 without a session cookie or to the wrong place"
                    problems[key] = problems.get(key, 0) + 1
                if r.status_code == 429:
                    await asyncio.sleep(0)  # keep hammering: a real form would be resubmitted by the person

    async def start_meter() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        if meter:
            meter.start()

    await asyncio.gather(start_meter(), *(client(i) for i in range(clients)))
    latencies.sort()
    count = len(latencies)
    ok_key = "200" if kind == "home" else "303"
    ok = statuses.get(ok_key, 0)

    def pct(p: float) -> float:
        return round(latencies[min(count - 1, int(p / 100 * count))] * 1000, 2) if count else float("nan")

    return {
        "cpu": meter.stop(count) if meter else {},
        "clients": clients,
        "seconds": duration,
        "requests": count,
        "ok": ok,
        "ok_per_s": round(ok / duration, 1),
        "rps": round(count / duration, 1),
        "statuses": dict(sorted(statuses.items())),
        "errors": count - ok,
        "problems": problems,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(latencies[-1] * 1000, 2) if count else float("nan"),
    }


def argon2_ceiling(seconds: float = 2.0) -> dict[str, float]:
    """Raw Argon2id verifications/s in this process with 1 and 2 threads: the most any login path can reach."""
    from argon2 import PasswordHasher, Type

    d = Settings()
    hasher = PasswordHasher(time_cost=d.argon2_time_cost, memory_cost=d.argon2_memory_kib,
                            parallelism=d.argon2_parallelism, type=Type.ID)
    stored = hasher.hash("reference-password")
    hasher.verify(stored, "reference-password")
    out: dict[str, float] = {}
    for threads in (1, 2):
        counts = [0] * threads
        stop_at = time.monotonic() + seconds

        def work(i: int, counts: list[int] = counts, stop_at: float = stop_at) -> None:
            while time.monotonic() < stop_at:
                hasher.verify(stored, "reference-password")
                counts[i] += 1

        started = time.monotonic()
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        out[f"{threads}_thread" + ("s" if threads > 1 else "")] = round(sum(counts) / (time.monotonic() - started), 1)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Orchestration and reporting


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = wrk_version()
    use_wrk = wrk is not None and not args.python_client
    if wrk is None and not args.python_client:
        print(WRK_INSTALL_HINT, file=sys.stderr, flush=True)
    defaults = Settings()
    workdir = Path(tempfile.mkdtemp(prefix="fairshelf-bench-"))
    atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after PostgreSQL has stopped
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "wrk": wrk, "granian": _version("granian"), "litestar": _version("litestar")},
        "argon2": {"memory_kib": defaults.argon2_memory_kib, "time_cost": defaults.argon2_time_cost,
                   "parallelism": defaults.argon2_parallelism},
        "db_pool": {"size": defaults.db_pool_size, "max_overflow": defaults.db_max_overflow},
        "params": {k: v for k, v in vars(args).items() if k != "json"},
        "runs": [],
    }
    load1 = os.getloadavg()[0]
    results["machine"]["loadavg_at_start"] = round(load1, 2)
    if load1 > 0.5:
        log(f"WARNING: load average is {load1:.2f} before starting; other work on this machine will skew the figures")
    t = time.monotonic()
    log(f"preparing PostgreSQL in {workdir} (migrate, seed, {args.accounts} login accounts)")
    database_url, credentials = prepare_database(workdir, args.accounts)
    log(f"database ready in {time.monotonic() - t:.1f}s; measuring raw Argon2id verifications (1 and 2 threads)")
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


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def summary(results: dict[str, Any]) -> str:
    m, a = results["machine"], results["argon2"]
    lines = [
        "",
        f"Fairshelf foundation benchmark — {m['cpus']} CPUs, Python {m['python']}, granian {m['granian']}, "
        f"{m['wrk'] or 'no wrk (Python client)'}",
        f"Argon2id m={a['memory_kib']} KiB t={a['time_cost']} p={a['parallelism']}; "
        f"DB pool {results['db_pool']['size']}+{results['db_pool']['max_overflow']} per worker; "
        "client and server share this machine.",
        "Raw Argon2id verifications/s in one process (the ceiling for logins): "
        + ", ".join(f"{v}/s with {k.replace('_', ' ')}" for k, v in a.get("raw_verifications_per_s", {}).items()),
        "",
    ]
    header = f"{'workers':>7}  {'test':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors / statuses"
    lines += [header, "-" * len(header)]
    for run in results["runs"]:
        w = run["workers"]
        if "error" in run:
            lines.append(f"{w:>7}  FAILED: {run['error']}")
        if home := run.get("home"):
            errs = home.get("socket_errors", 0) + home.get("non_2xx_3xx", 0) if home.get("tool") == "wrk" \
                else home["errors"]
            label = f"GET / @{results['params']['connections']} conn"
            lines.append(f"{w:>7}  {label:<34} {home['rps']:>9.1f} {home['p50_ms']:>8.1f} {home['p99_ms']:>8.1f} "
                         f"{home['max_ms']:>8.1f}  {errs} errors")
        for key in ("login_distinct_ip", "login_same_ip"):
            if login := run.get(key):
                label = f"POST /login @{login['clients']} clients, {key.split('_')[1]} IP"
                lines.append(f"{w:>7}  {label:<34} {login['ok_per_s']:>9.1f} {login['p50_ms']:>8.1f} "
                             f"{login['p99_ms']:>8.1f} {login['max_ms']:>8.1f}  {login['statuses']}")
                if login["problems"]:
                    lines.append(f"{'':>9}problems: {login['problems']}")
    lines += ["", "(login req/s counts only 303 = successful verifications; p50/p99 cover every answer)", ""]
    header = (f"{'workers':>7}  {'test':<34} {'app':>6} {'postgres':>9} {'client':>7} {'other':>6}  "
              f"{'app CPU ms/request':>18}")
    lines += ["CPU used during the measured window (cores busy, out of " + str(m["cpus"]) + ")", header,
              "-" * len(header)]
    for run in results["runs"]:
        for key, label in (("home", "GET /"), ("login_distinct_ip", "POST /login, distinct IP"),
                           ("login_same_ip", "POST /login, same IP")):
            cpu = (run.get(key) or {}).get("cpu")
            if cpu:
                lines.append(f"{run['workers']:>7}  {label:<34} {cpu['app_cores']:>6.2f} {cpu['postgres_cores']:>9.2f} "
                             f"{cpu['client_cores']:>7.2f} {cpu['other_cores']:>6.2f}  "
                             f"{cpu.get('app_cpu_ms_per_request', float('nan')):>18.2f}")
    lines.append("('other' = CPU used by processes this script did not start; well above 0 means the figures "
                 "are skewed)\n")
    header = f"{'workers':>7}  {'process':<10} {'pid':>8} {'RSS idle':>9} {'after /':>9} {'after login':>12} {'peak':>8}"
    lines += ["Resident memory (MiB, VmRSS from /proc/<pid>/status; peak = VmHWM)", header, "-" * len(header)]
    for run in results["runs"]:
        if "rss_idle" not in run:
            continue
        phases = [run.get("rss_idle"), run.get("rss_after_home"), run.get("rss_after_login")]
        rows = [("main", [p["main"] if p else {} for p in phases])]
        for i, wk in enumerate(run["rss_idle"]["workers"]):
            rows.append((f"worker {i + 1}", [_find(p, wk["pid"]) for p in phases]))
        for name, snaps in rows:
            last = next((s for s in reversed(snaps) if s), {})
            cells = [f"{s.get('vmrss_mib', float('nan')):>9.1f}" if s else f"{'-':>9}" for s in snaps]
            lines.append(f"{run['workers']:>7}  {name:<10} {snaps[0].get('pid', 0):>8} {cells[0]} {cells[1]} "
                         f"{cells[2]:>12} {last.get('vmhwm_mib', float('nan')):>8.1f}")
    lines.append(f"\ntotal {results['total_seconds']}s")
    return "\n".join(lines)


def _find(phase: dict[str, Any] | None, pid: int) -> dict[str, Any]:
    for wk in (phase or {}).get("workers", []):
        if wk["pid"] == pid:
            return wk
    return {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--workers", type=ints, default=[1, 2], help="Granian worker counts to run (default 1,2)")
    p.add_argument("--connections", type=int, default=64, help="home page: concurrent connections (default 64)")
    p.add_argument("--duration", type=int, default=20, help="home page: measured seconds (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="home page: warm-up seconds, discarded (default 3)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: leaves the CPUs to the server)")
    p.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk exists")
    p.add_argument("--login-clients", type=int, default=8, help="login: concurrent clients (default 8)")
    p.add_argument("--login-duration", type=float, default=12, help="login: measured seconds per mode (default 12)")
    p.add_argument("--login-warmup", type=float, default=2, help="login: warm-up seconds, discarded (default 2)")
    p.add_argument("--login-ips", type=lambda s: [x for x in s.split(",") if x], default=["distinct", "same"],
                   help="login client-IP modes to run: distinct (X-Forwarded-For per client), same (all from "
                        "127.0.0.1); default distinct,same")
    p.add_argument("--accounts", type=int, default=16, help="login: distinct accounts (default 16)")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   type=lambda s: tuple(s.split("=", 1)),
                   help="extra environment for Granian (repeatable), e.g. MALLOC_MMAP_THRESHOLD_=1048576")
    p.add_argument("--json", type=Path, default=BENCH / "results",
                   help="folder for the JSON results (default tests/bench/results; '-' to skip)")
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
    if str(args.json) != "-":
        args.json.mkdir(parents=True, exist_ok=True)
        path = args.json / f"foundation-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"results written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any("error" in r for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
