"""Measuring one upload of the upload benchmark: the worker's RSS every 50 ms, its CPU per thread, /health
latency meanwhile, and what the database and the disk hold afterwards. Used by upload_1gb.py."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from common import MiB

# ------------------------------------------------------------------------------------------------------------
# The worker: RSS every 50 ms, CPU per thread, /health meanwhile


class RssSampler(threading.Thread):
    """Reads VmRSS of `pid` every `interval` seconds until stopped and keeps the highest value."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self._done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            kib = int(line.split()[1])
                            self.peak_kib = max(self.peak_kib, kib)
                            self.samples += 1
                            break
            except OSError:
                return
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


class HealthProbe(threading.Thread):
    """GET /health every `interval` seconds on its own connection: how long other requests wait meanwhile."""

    def __init__(self, base: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.base, self.interval = base, interval
        self.latencies: list[float] = []
        self.failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self._done.is_set():
                t0 = time.monotonic()
                try:
                    ok = c.get("/health", headers={"accept": "application/json"}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.monotonic() - t0)
                self.failures += not ok
                self._done.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> dict[str, Any]:
        self._done.set()
        self.join()
        lat = sorted(self.latencies)
        if not lat:
            return {"requests": 0}
        return {"requests": len(lat), "failures": self.failures,
                "p50_ms": round(lat[len(lat) // 2] * 1000, 1), "max_ms": round(lat[-1] * 1000, 1)}


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (write 5 to clear_refs, Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def thread_cpu(pid: int) -> ThreadCpu:
    """CPU seconds (user + system) per thread of `pid`, with the thread's name (comm)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: ThreadCpu = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return out


ThreadCpu = dict[int, tuple[str, float]]


def cpu_by_thread_name(before: ThreadCpu, after: ThreadCpu) -> dict[str, float]:
    """CPU seconds spent between two thread_cpu() snapshots, added up per thread name (tokio workers etc.)."""
    spent: Counter[str] = Counter()
    for tid, (name, cpu) in after.items():
        spent[name] += cpu - before.get(tid, (name, 0.0))[1]
    return {k: round(v, 2) for k, v in spent.most_common() if v >= 0.01}


def process_cpu(pid: int) -> tuple[float, float]:
    t = psutil.Process(pid).cpu_times()
    return t.user, t.system


# ------------------------------------------------------------------------------------------------------------
# What the upload left in the database and on disk


def page_message(html: str) -> str:
    """The title and message of the app's error page (or the start of whatever else came back)."""
    section = re.search(r'<section class="card narrow error-page">(.*?)</section>', html, re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", section.group(1) if section else html)
    return " ".join(text.split())[:500]


def newest_upload_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM uploads").fetchone()[0]  # type: ignore[index]


def check_upload(database_url: str, item: str, after_id: int, source: Path, *, verify_bytes: bool,
                 keep: bool) -> dict[str, Any]:
    """What the database and the disk hold for the upload just made; compare the file with the source."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT u.public_id, u.state, u.size_bytes, u.temp_path, u.filename, c.storage_used_bytes "
            "FROM uploads u JOIN items i ON i.id = u.item_id JOIN creators c ON c.user_id = u.creator_id "
            "WHERE i.public_id = %s AND u.id > %s", (item, after_id)).fetchall()
    if len(rows) != 1:
        return {"problems": [f"{len(rows)} new upload rows for the item, expected 1"]}
    row = rows[0]
    public_id, state, size_bytes, temp_path, filename, storage_used = row
    expected = source.stat().st_size
    out: dict[str, Any] = {"upload": public_id, "state": state, "size_bytes": size_bytes,
                           "filename": filename, "storage_used_bytes": storage_used, "temp_path": temp_path}
    problems = []
    if state not in ("received", "processing", "ready"):
        problems.append(f"upload state is {state!r}")
    if size_bytes != expected:
        problems.append(f"size_bytes is {size_bytes}, expected {expected}")
    path = Path(temp_path) if temp_path else None
    if path is None or not path.exists():
        problems.append(f"temporary file {temp_path!r} is missing")
    else:
        out["temp_file_bytes"] = path.stat().st_size
        if out["temp_file_bytes"] != expected:
            problems.append(f"temporary file has {out['temp_file_bytes']} bytes, expected {expected}")
        elif verify_bytes:
            out["bytes_identical"] = same_bytes(source, path)
            if not out["bytes_identical"]:
                problems.append("temporary file differs from the file sent")
        if not keep:
            path.unlink()  # keeps the disk (and the dirty page cache) from growing by 1 GiB per run
    out["problems"] = problems
    return out


def same_bytes(a: Path, b: Path, block: int = 4 * MiB) -> bool:
    with a.open("rb", buffering=0) as fa, b.open("rb", buffering=0) as fb:
        while True:
            x, y = fa.read(block), fb.read(block)
            if x != y:
                return False
            if not x:
                return True
