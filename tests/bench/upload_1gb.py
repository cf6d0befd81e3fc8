"""Upload benchmark: one 1 GiB file through POST /creator/items/<id>/uploads, with throughput and worker RSS.

Self-contained: starts a throwaway embedded PostgreSQL and migrates it, serves the app with Granian (1 worker,
DEFAULT_TIER=big_files so the 20 GiB per-file limit applies), signs up a creator over HTTP, starts selling,
creates a "file" item, then uploads a generated file with a streaming multipart body (the client never holds
the file in memory) and checks that the upload row and the received temporary file are right.

    .venv/bin/python tests/bench/upload_1gb.py                 # 3 uploads of 1 GiB (about 20 s)
    .venv/bin/python tests/bench/upload_1gb.py --profile py-spy,perf --py-spy /tmp/py-spy-venv/bin/py-spy
    .venv/bin/python tests/bench/upload_1gb.py --help

See tests/bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # so `python tests/bench/upload_1gb.py` can import the app
sys.path.insert(0, str(BENCH))  # and the server helpers of run_foundation.py

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from run_foundation import Server, log, machine_busy_seconds, proc_memory  # noqa: E402

from app.settings import Settings  # noqa: E402

MiB = 1024 * 1024
CSRF_COOKIE = "fairshelf_csrf"
PASSWORD = "bench upload password 42"
RSS_TARGET_MIB = 50
THROUGHPUT_TARGET_MB_S = 100  # decimal megabytes, as in the issue


# ----------------------------------------------------------------------------------------------------------------
# Setup: database, the file to send, the creator and the item


def prepare_database(workdir: Path) -> str:
    """Start an embedded PostgreSQL under `workdir` and migrate it; return the database URL."""
    from app.db import embedded
    from app.db.migrate import upgrade

    admin_url = embedded.start(workdir / "pgdata", delete_on_exit=True)
    url = embedded.ensure_database(admin_url, "fairshelf_bench_upload", fresh=True)
    upgrade(Settings(mode="test", database_url=url))
    return url


def make_source_file(path: Path, size: int) -> None:
    """Write `size` bytes that don't compress and whose every MiB differs (a reordered chunk would show).

    16 MiB of os.urandom is reused at a shifting offset and each MiB starts with its own index: this takes a
    couple of seconds for 1 GiB, where os.urandom for all of it would take several times longer.
    """
    pool = os.urandom(16 * MiB + MiB)
    with path.open("wb", buffering=0) as f:
        for i in range(0, size, MiB):
            n = min(MiB, size - i)
            offset = (i // MiB * 65537) % (16 * MiB)
            block = (i // MiB).to_bytes(8, "big") + pool[offset:offset + MiB - 8]
            f.write(block[:n])


def set_up_creator(client: httpx.Client) -> str:
    """Sign up, start selling on the big_files tier, create a "file" item; returns the item's public id."""
    client.get("/login")
    token = client.cookies[CSRF_COOKIE]

    def post(url: str, data: dict[str, str]) -> httpx.Response:
        r = client.post(url, data={**data, "_csrf_token": token}, headers={"x-csrf-token": token})
        if r.status_code != 303:
            raise RuntimeError(f"POST {url} answered {r.status_code}, not 303:\n{r.text[:2000]}")
        return r

    name = f"bench_up_{secrets.token_hex(3)}"
    post("/signup", {"email": f"{name}@bench.fairshelf.localhost", "username": name,
                     "display_name": "Bench Uploader", "password": PASSWORD})
    post("/sell", {"tier": "big_files", "currency": "USD", "bio": "", "links": ""})
    location = post("/creator/items/new", {"type": "file"}).headers["location"]
    match = re.match(r"^/creator/items/([^/]+)/details$", location)
    if not match:
        raise RuntimeError(f"creating the item redirected to {location!r}")
    return match.group(1)


# ----------------------------------------------------------------------------------------------------------------
# The streaming multipart body


class MultipartFile:
    """A multipart/form-data body: the CSRF field first, then the file read in `chunk` bytes at a time.

    Iterating reads the file as the socket takes it, so the client holds at most one chunk; the exact length
    is known up front and sent as Content-Length (httpx then does not use chunked transfer encoding).
    """

    def __init__(self, path: Path, filename: str, csrf_token: str, chunk: int = MiB) -> None:
        self.path, self.chunk = path, chunk
        self.boundary = "----FairshelfBench" + secrets.token_hex(12)
        b = self.boundary.encode()
        self.head = (
            b"--" + b + b"\r\n"
            b'Content-Disposition: form-data; name="_csrf_token"\r\n\r\n' + csrf_token.encode() + b"\r\n"
            b"--" + b + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        self.tail = b"\r\n--" + b + b"--\r\n"
        self.size = path.stat().st_size
        self.length = len(self.head) + self.size + len(self.tail)
        self.sent = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": f"multipart/form-data; boundary={self.boundary}",
                "content-length": str(self.length)}

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb", buffering=0) as f:
            while block := f.read(self.chunk):
                self.sent += len(block)
                yield block
        yield self.tail


# ----------------------------------------------------------------------------------------------------------------
# Measuring the worker: RSS every 50 ms, CPU per thread


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
    """Reset the process's VmHWM to its current RSS (writing 5 to clear_refs, Linux 4.0+); False if refused."""
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


# ----------------------------------------------------------------------------------------------------------------
# One upload


def upload_once(server: Server, client: httpx.Client, item: str, source: Path, database_url: str, worker: int,
                *, chunk: int, verify_bytes: bool, keep: bool, probe: bool = True,
                profiler: list[str] | None = None) -> dict[str, Any]:
    """Send `source` once and measure it; `profiler` is a command to run against the worker meanwhile."""
    token = client.cookies[CSRF_COOKIE]
    body = MultipartFile(source, f"bench-{source.stat().st_size // MiB}MiB.bin", token, chunk)
    newest_before = newest_upload_id(database_url)
    idle = proc_memory(worker)
    peak_reset = reset_peak_rss(worker)
    sampler = RssSampler(worker)
    cpu_before, threads_before = process_cpu(worker), thread_cpu(worker)
    main_pid = server.proc.pid  # type: ignore[union-attr]
    main_before = proc_memory(main_pid)
    me_before = resource.getrusage(resource.RUSAGE_SELF)
    busy_before = machine_busy_seconds()
    spy = None
    if profiler:
        spy = subprocess.Popen(profiler, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.5)  # let it attach before the bytes flow
    prober = HealthProbe(server.base) if probe else None
    sampler.start()
    if prober:
        prober.start()
    t0 = time.monotonic()
    try:
        response: httpx.Response | str = client.post(f"/creator/items/{item}/uploads", content=iter(body),
                                                     headers=body.headers)
    except httpx.HTTPError as exc:
        response = f"{type(exc).__name__}: {exc}"
    finally:
        seconds = time.monotonic() - t0
        sampler.stop()
        health = prober.stop() if prober else None
    cpu_after, threads_after = process_cpu(worker), thread_cpu(worker)
    me_after = resource.getrusage(resource.RUSAGE_SELF)
    busy = machine_busy_seconds() - busy_before
    after = proc_memory(worker)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy and perf write their output when interrupted
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if spy.returncode not in (0, -signal.SIGINT, 130):
            log(f"{profiler[0]} exited with {spy.returncode}: {err.decode(errors='replace')[-500:]}")
    if isinstance(response, str):
        return {"error": f"the upload failed after {seconds:.1f}s ({body.sent} file bytes read): {response}"}

    app_cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
    client_cpu = (me_after.ru_utime - me_before.ru_utime) + (me_after.ru_stime - me_before.ru_stime)
    result: dict[str, Any] = {
        "status": response.status_code,
        "bytes_file": body.size,
        "bytes_body": body.length,
        "seconds": round(seconds, 3),
        "mb_per_s": round(body.length / seconds / 1e6, 1),
        "mib_per_s": round(body.length / seconds / MiB, 1),
        "rss_before_mib": idle.get("vmrss_mib"),
        "rss_peak_sampled_mib": round(sampler.peak_kib / 1024, 1),
        "rss_after_mib": after.get("vmrss_mib"),
        "vmhwm_after_mib": after.get("vmhwm_mib"),
        "vmhwm_was_reset": peak_reset,
        "rss_samples": sampler.samples,
        "main_process_rss_mib": [main_before.get("vmrss_mib"), proc_memory(main_pid).get("vmrss_mib")],
        "health_during_upload": health,
        "worker_cpu_s": {"user": round(app_cpu[0], 2), "system": round(app_cpu[1], 2)},
        "worker_cpu_by_thread_s": cpu_by_thread_name(threads_before, threads_after),
        "client_cpu_s": round(client_cpu, 2),
        "machine_busy_cores": round(busy / seconds, 2),
        "other_cores": round(max(0.0, busy - sum(app_cpu) - client_cpu) / seconds, 2),
    }
    # What the issue asks about: the worker's highest resident size during the upload, over its size before.
    peak = max(result["rss_peak_sampled_mib"], after.get("vmhwm_mib", 0) if peak_reset else 0)
    result["rss_growth_mib"] = round(peak - (idle.get("vmrss_mib") or 0), 1)
    if response.status_code != 303:
        result["error"] = f"upload answered {response.status_code}: {page_message(response.text)}"
        return result
    result["check"] = check_upload(database_url, item, newest_before, source, verify_bytes=verify_bytes,
                                   keep=keep)
    if result["check"].get("problems"):
        result["error"] = "; ".join(result["check"]["problems"])
    return result


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


# ----------------------------------------------------------------------------------------------------------------
# Orchestration and reporting


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fairshelf-upload-bench-", dir=args.tmp_dir))
    atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after PostgreSQL has stopped
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "granian": _version("granian"), "litestar": _version("litestar"),
                    "multipart": _version("multipart"), "httpx": _version("httpx"),
                    "loadavg_at_start": round(os.getloadavg()[0], 2)},
        "params": {k: str(v) for k, v in vars(args).items() if k != "json"},
        "workdir": str(workdir),
        "uploads": [],
    }
    if results["machine"]["loadavg_at_start"] > 0.5:
        log(f"WARNING: load average is {results['machine']['loadavg_at_start']} before starting; "
            "other work on this machine will skew the figures")
    started = time.monotonic()
    log(f"preparing PostgreSQL in {workdir}")
    database_url = prepare_database(workdir)

    source = workdir / "source.bin"
    t = time.monotonic()
    make_source_file(source, args.size_mib * MiB)
    results["generate_seconds"] = round(time.monotonic() - t, 2)
    log(f"generated {args.size_mib} MiB in {results['generate_seconds']}s (not counted)")

    var_dir = workdir / "var"
    server = Server(database_url, 1, workdir / "granian.log", {
        "DEFAULT_TIER": "big_files", "VAR_DIR": str(var_dir), **dict(args.server_env)})
    try:
        log(f"starting granian (1 worker) on port {server.port}, VAR_DIR={var_dir}")
        server.start()
        workers = server.worker_pids()
        if len(workers) != 1:
            raise RuntimeError(f"expected one granian worker, found {workers}")
        worker = workers[0]
        results["worker_pid"] = worker
        with httpx.Client(base_url=server.base, timeout=httpx.Timeout(30.0, read=600.0, write=600.0),
                          follow_redirects=False) as client:
            item = set_up_creator(client)
            results["item"] = item
            rss = proc_memory(worker).get("vmrss_mib")
            log(f"creator signed up; item {item}; worker pid {worker} at {rss} MiB")
            idle_probe = HealthProbe(server.base)
            idle_probe.start()
            time.sleep(1.5)
            results["health_idle"] = idle_probe.stop()
            chunk = args.chunk_kib * 1024
            for i in range(1, args.repeat + 1):
                r = upload_once(server, client, item, source, database_url, worker, chunk=chunk,
                                verify_bytes=not args.no_verify, keep=args.keep)
                r["run"] = i
                results["uploads"].append(r)
                log(_line(r))
                if "error" in r:
                    break
            for kind in args.profile:
                tool = find_tool(args.py_spy, "py-spy") if kind == "py-spy" else find_tool(None, "perf")
                if not tool:
                    log(f"--profile {kind}: {kind} not found (py-spy: pip install py-spy into a separate venv "
                        "and pass --py-spy PATH; perf: apt-get install linux-perf)")
                    continue
                if any("error" in r for r in results["uploads"]):
                    break
                out = args.json if str(args.json) != "-" else workdir
                out.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                path = out / f"upload-{kind}-{stamp}.{'txt' if kind == 'py-spy' else 'data'}"
                command = profiler_command(kind, tool, worker, path)
                log(f"profiled upload (not in the figures): {' '.join(command)}")
                r = upload_once(server, client, item, source, database_url, worker, chunk=chunk,
                                verify_bytes=False, keep=False, probe=False, profiler=command)
                r["run"] = kind
                if path.exists():
                    found = summarize_py_spy(path) if kind == "py-spy" else summarize_perf(tool, path)
                    r["profile"] = {"tool": kind, "path": str(path), **found}
                results.setdefault("profiled_uploads", []).append(r)
                log(_line(r))
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {results['error']}\n--- granian log ---\n{server.log_tail()}")
    finally:
        server.stop()
    results["total_seconds"] = round(time.monotonic() - started, 1)
    return results


def _line(r: dict[str, Any]) -> str:
    if "seconds" not in r:
        return f"upload {r.get('run')}: {r.get('error')}"
    text = (f"upload {r['run']}: {r['status']} in {r['seconds']:.2f}s = {r['mb_per_s']} MB/s; worker RSS "
            f"{r['rss_before_mib']} -> peak {r['rss_peak_sampled_mib']} (VmHWM {r['vmhwm_after_mib']}) MiB")
    return text + (f"  ERROR {r['error']}" if "error" in r else "")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["",
             (f"Fairshelf upload benchmark — {m['cpus']} CPUs, Python {m['python']}, granian {m['granian']}, "
              f"litestar {m['litestar']}, multipart {m['multipart']}; client and server share this machine."),
             (f"Targets from the issue: worker RSS growth < {RSS_TARGET_MIB} MiB, throughput >= "
              f"{THROUGHPUT_TARGET_MB_S} MB/s."),
             ""]
    header = (f"{'run':>8} {'status':>6} {'seconds':>8} {'MB/s':>7} {'RSS before':>10} {'peak':>7} {'VmHWM':>7} "
              f"{'growth':>7} {'worker CPU usr+sys':>19} {'client CPU':>10} {'other':>6}  check")
    lines += [header, "-" * len(header)]
    rows = list(results["uploads"]) + list(results.get("profiled_uploads", []))
    for r in rows:
        if "seconds" not in r:
            lines.append(f"{r.get('run')!s:>8} {r.get('error')}")
            continue
        c = r.get("check", {})
        check = (f"{c.get('state')}, {c.get('temp_file_bytes')} B on disk"
                 + (", bytes identical" if c.get("bytes_identical") else "")) if c else ""
        if "error" in r:
            check = f"ERROR {r['error']}"
        cpu = r["worker_cpu_s"]
        lines.append(f"{r['run']!s:>8} {r['status']:>6} {r['seconds']:>8.2f} {r['mb_per_s']:>7.1f} "
                     f"{r['rss_before_mib']:>10.1f} {r['rss_peak_sampled_mib']:>7.1f} {r['vmhwm_after_mib']:>7.1f} "
                     f"{r['rss_growth_mib']:>7.1f} {cpu['user']:>9.2f}+{cpu['system']:<9.2f} "
                     f"{r['client_cpu_s']:>10.2f} {r['other_cores']:>6.2f}  {check}")
    lines.append("(MB = 10^6 bytes of request body; RSS in MiB from /proc/<pid>/status of the Granian worker; peak "
                 "= highest VmRSS sampled every 50 ms; VmHWM reset before each upload; 'other' = cores used by "
                 "processes this script did not start)")
    for r in rows:
        if r.get("worker_cpu_by_thread_s"):
            lines.append(f"worker CPU seconds by thread, run {r['run']}: {r['worker_cpu_by_thread_s']}")
    if h := results.get("health_idle"):
        lines.append(f"GET /health every 100 ms with no upload: {h['requests']} answers, p50 {h.get('p50_ms')} ms, "
                     f"max {h.get('max_ms')} ms")
    for r in rows:
        if h := r.get("health_during_upload"):
            lines.append(f"GET /health every 100 ms during run {r['run']}: {h['requests']} answers, p50 "
                         f"{h.get('p50_ms')} ms, max {h.get('max_ms')} ms, {h.get('failures', 0)} failures")
    for r in rows:
        prof = r.get("profile")
        if not prof:
            continue
        if prof["tool"] == "py-spy":
            lines += ["", (f"py-spy: where the worker's Python time goes ({prof['python_samples']} samples "
                           f"running Python; not counted: {prof['not_counted']}; {prof['path']})")]
            lines += [f"    {v:>5}%  {k}" for k, v in prof["parts_pct"].items()]
            lines.append("  hottest leaf frames:")
            lines += [f"    {v:>5}%  {k}" for k, v in prof["top_leaf_pct"].items()]
        else:
            lines += ["", f"perf: the whole worker incl. kernel and Granian's Rust threads ({prof['path']})"]
            lines += [f"    {v:>5}%  {k}" for k, v in prof["by_thread_and_library_pct"].items()]
            lines.append("  hottest symbols:")
            lines += [f"    {v:>5}%  {k}" for k, v in prof["top_symbols_pct"].items()]
    ok = [r for r in results["uploads"] if "error" not in r and "seconds" in r]
    if ok:
        speeds = sorted(r["mb_per_s"] for r in ok)
        growth = max(r["rss_growth_mib"] for r in ok)
        met_speed = "met" if speeds[0] >= THROUGHPUT_TARGET_MB_S else "NOT met"
        met_rss = "met" if growth < RSS_TARGET_MIB else "NOT met"
        lines += ["", (f"throughput {speeds[0]}–{speeds[-1]} MB/s (target >= {THROUGHPUT_TARGET_MB_S}: "
                       f"{met_speed}); worst RSS growth {growth} MiB (target < {RSS_TARGET_MIB}: {met_rss})")]
    if "error" in results:
        lines.append(f"FAILED: {results['error']}")
    lines.append(f"total {results['total_seconds']}s (generating the file: {results.get('generate_seconds')}s)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024, help="size of the uploaded file in MiB (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="uploads measured, one after another (default 3)")
    p.add_argument("--chunk-kib", type=int, default=1024, help="client read/send chunk in KiB (default 1024)")
    p.add_argument("--no-verify", action="store_true", help="skip the byte-for-byte comparison after each upload")
    p.add_argument("--keep", action="store_true", help="keep the received files until exit (default: delete each "
                                                       "after checking, so page cache and disk don't fill)")
    p.add_argument("--profile", type=lambda v: [x for x in v.split(",") if x], default=[],
                   help="extra uploads (not in the figures) under py-spy and/or perf, e.g. --profile py-spy,perf")
    p.add_argument("--py-spy", help="path to the py-spy binary (default: the one on PATH)")
    p.add_argument("--tmp-dir", help="where the temporary folder goes (default: the system's); the file, "
                                     "PostgreSQL and VAR_DIR all live there")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   type=lambda s: tuple(s.split("=", 1)), help="extra environment for Granian (repeatable)")
    p.add_argument("--json", type=Path, default=BENCH / "results",
                   help="folder for the JSON results (default tests/bench/results; '-' to skip)")
    args = p.parse_args(argv)
    if not set(args.profile) <= {"py-spy", "perf"}:
        p.error("--profile takes py-spy and/or perf")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(summary(results), flush=True)
    if str(args.json) != "-":
        args.json.mkdir(parents=True, exist_ok=True)
        path = args.json / f"upload-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"results written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    failed = "error" in results or any("error" in r for r in results["uploads"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
