"""What the benchmark scripts share: the throwaway embedded PostgreSQL, the Granian server they measure
(start-up, health check, clean stop), memory and CPU readings from /proc, logging, and writing the results.

Not a script: run_foundation.py and upload_1gb.py import it (see README.md). Importing it puts the project
root on sys.path, so `python tests/bench/<script>.py` can import the app.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts put it there already; this is for importing common.py alone

import psutil  # noqa: E402

from app.settings import Settings  # noqa: E402

MiB = 1024 * 1024
SECRET_KEY = "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
CSRF_COOKIE = "fairshelf_csrf"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------------------
# Workdir and PostgreSQL


def make_workdir(prefix: str, parent: str | None = None) -> Path:
    """A temporary folder for everything a run creates (PostgreSQL's data, files, logs), removed at exit."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after PostgreSQL has stopped
    return workdir


def start_database(workdir: Path, name: str) -> str:
    """Start an embedded PostgreSQL under `workdir` (stopped and deleted at exit), create database `name`
    afresh and migrate it; return its URL."""
    from app.db import embedded
    from app.db.migrate import upgrade

    admin_url = embedded.start(workdir / "pgdata", delete_on_exit=True)
    url = embedded.ensure_database(admin_url, name, fresh=True)
    upgrade(Settings(mode="test", database_url=url))
    return url


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, port: int, workers: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment for Granian: development mode (no SMTP needed) with production-strength settings."""
    defaults = Settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANIAN_")}
    # Nothing from the caller's shell leaks into the measured settings.
    for f in Settings.__dataclass_fields__:
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
    target: str = "app.main:app_from_env"  # or another ASGI factory, e.g. the reference app next to this file
    extra_args: list[str] = field(default_factory=list)  # more Granian options (e.g. --backlog)
    command: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40.0) -> None:
        command = self.command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory", self.target,
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--no-ws", "--log-level", "warning", *self.extra_args,
        ]
        self._log = self.log_path.open("wb")
        env = server_env(self.database_url, self.port, self.workers, self.extra_env)
        env["PYTHONPATH"] = f"{ROOT}:{BENCH}"  # benchmark apps (the reference) live next to this file
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
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


# ------------------------------------------------------------------------------------------------------------
# Readings from /proc


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


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat), to spot other load on the machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------------------
# The machine and the results


def package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def machine_info(*packages: str) -> dict[str, Any]:
    """CPUs, Python and platform, and the installed version of each of `packages`."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            **{package: package_version(package) for package in packages}}


def load_at_start() -> float:
    """The 1-minute load average, with a warning when other work is already running."""
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"WARNING: load average is {load1:.2f} before starting; other work on this machine will skew the "
            "figures")
    return round(load1, 2)


def add_shared_arguments(p: argparse.ArgumentParser, server_env_help: str) -> None:
    """--server-env (extra environment for Granian) and --json (where the results go)."""
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   type=lambda s: tuple(s.split("=", 1)), help=server_env_help)
    p.add_argument("--json", type=Path, default=BENCH / "results",
                   help="folder for the JSON results (default tests/bench/results; '-' to skip)")


def write_results(results: dict[str, Any], folder: Path, prefix: str) -> None:
    """Write the results to `folder`/<prefix>-<time>.json, unless `folder` is '-'."""
    if str(folder) == "-":
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
