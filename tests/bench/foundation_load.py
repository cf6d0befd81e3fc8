"""The foundation benchmark's load: wrk (or a closed-loop Python client) on the home page, the login loop, raw
Argon2id verifications, and the CPU each side used meanwhile. Used by run_foundation.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shutil
import subprocess
import threading
import time
from typing import Any

import httpx
import psutil
from common import BENCH, CSRF_COOKIE, Server, machine_busy_seconds

from app.settings import Settings


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
        this = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
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


# ------------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------------
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
                # Granian's peer is 127.0.0.1, a trusted proxy, so the app believes X-Forwarded-For: this is
                # how distinct people arrive through Caddy in production.
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
    """Raw Argon2id verifications/s in this process with 1 and 2 threads: the most a login path can reach."""
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
        rate = sum(counts) / (time.monotonic() - started)
        out[f"{threads}_thread" + ("s" if threads > 1 else "")] = round(rate, 1)
    return out
