"""Profiling an upload of the upload benchmark with py-spy or perf, and summing up where the worker's time
went. Used by upload_1gb.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any


def find_tool(explicit: str | None, name: str) -> str | None:
    for candidate in (explicit, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def profiler_command(kind: str, tool: str, pid: int, out: Path) -> list[str]:
    if kind == "py-spy":
        # Python stacks of the worker's threads (Granian's Rust threads show when they call into Python).
        return [tool, "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", str(out)]
    # The whole worker: kernel (page cache, sockets), Granian's Rust threads and the interpreter.
    return [tool, "record", "-F", "999", "-g", "-p", str(pid), "-o", str(out)]


IDLE_LEAF = re.compile(r"^(Condition\.wait|_worker|Event\.wait|Queue\.get|SimpleQueue\.get) ")


def summarize_py_spy(path: Path, top: int = 12) -> dict[str, Any]:
    """From py-spy's raw (collapsed) output: share of samples per part of the upload path and per leaf frame.

    Shares are of the samples that ran Python: py-spy also reports threads parked in Condition.wait (logging's
    queue listener, an idle thread pool) and Granian threads with no Python frame; those are only counted.
    """
    leaf: Counter[str] = Counter()
    part: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if not frames[-1]:
            skipped["no Python frame (Granian threads)"] += n
            continue
        if IDLE_LEAF.search(frames[-1]):
            skipped["parked threads (Condition.wait, idle pool)"] += n
            continue
        leaf[frames[-1]] += n
        below = stack.split("receive_file (", 1)[1] if "receive_file (" in stack else None
        if below is None:
            if "call_soon_threadsafe" in stack:
                part["Granian → asyncio hand-off (call_soon_threadsafe, on Granian's thread)"] += n
            elif "_run_once" in stack or "select" in frames[-1]:
                part["asyncio event loop (mostly epoll: waiting for the next chunk)"] += n
            else:
                part["other"] += n
        elif ";" not in below:
            part["receive_file itself (os.write, loop)"] += n
        elif "multipart" in below:
            part["multipart parser"] += n
        else:
            part["Litestar request.stream() / ASGI receive"] += n
    active = total - sum(skipped.values())
    pct = lambda n: round(100 * n / active, 1) if active else 0.0  # noqa: E731
    return {"samples": total, "python_samples": active, "not_counted": dict(skipped),
            "parts_pct": {k: pct(v) for k, v in part.most_common()},
            "top_leaf_pct": {k: pct(v) for k, v in leaf.most_common(top)}}


def summarize_perf(tool: str, path: Path, top: int = 12) -> dict[str, Any]:
    """`perf report` of the worker: share of samples per thread × library, and the hottest symbols."""

    def report(sort: str) -> dict[str, float]:
        out = subprocess.run([tool, "report", "-i", str(path), "--no-children", "--sort", sort, "-g", "none",
                              "--stdio"], capture_output=True, text=True, timeout=120, check=False).stdout
        rows: dict[str, float] = {}
        for line in out.splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+(.+?)\s*$", line)
            if m and len(rows) < top:
                rows[re.sub(r"\s{2,}", "  ", m.group(2))] = float(m.group(1))
        return rows

    return {"by_thread_and_library_pct": report("comm,dso"), "top_symbols_pct": report("sym")}
