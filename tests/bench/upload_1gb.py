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
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# So `python tests/bench/upload_1gb.py` can import the app, and the helpers next to this file.
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import httpx  # noqa: E402
from common import (  # noqa: E402
    CSRF_COOKIE,
    MiB,
    Server,
    add_shared_arguments,
    load_at_start,
    log,
    machine_busy_seconds,
    machine_info,
    make_workdir,
    proc_memory,
    start_database,
    write_results,
)
from upload_measure import (  # noqa: E402
    HealthProbe,
    RssSampler,
    check_upload,
    cpu_by_thread_name,
    newest_upload_id,
    page_message,
    process_cpu,
    reset_peak_rss,
    thread_cpu,
)
from upload_profile import find_tool, profiler_command, summarize_perf, summarize_py_spy  # noqa: E402
from upload_report import run_line, summary  # noqa: E402

PASSWORD = "bench upload password 42"


# ------------------------------------------------------------------------------------------------------------
# Setup: the file to send, the creator and the item (the database and server come from common.py)


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


# ------------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------------
# Orchestration


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = make_workdir("fairshelf-upload-bench-", args.tmp_dir)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info("granian", "litestar", "multipart", "httpx"),
                    "loadavg_at_start": load_at_start()},
        "params": {k: str(v) for k, v in vars(args).items() if k != "json"},
        "workdir": str(workdir),
        "uploads": [],
    }
    started = time.monotonic()
    log(f"preparing PostgreSQL in {workdir}")
    database_url = start_database(workdir, "fairshelf_bench_upload")

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
                log(run_line(r))
                if "error" in r:
                    break
            for kind in args.profile:
                tool = find_tool(args.py_spy, "py-spy") if kind == "py-spy" else find_tool(None, "perf")
                if not tool:
                    log(f"--profile {kind}: {kind} not found (py-spy: pip install py-spy into a separate "
                        "venv and pass --py-spy PATH; perf: apt-get install linux-perf)")
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
                log(run_line(r))
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {results['error']}\n--- granian log ---\n{server.log_tail()}")
    finally:
        server.stop()
    results["total_seconds"] = round(time.monotonic() - started, 1)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024,
                   help="size of the uploaded file in MiB (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="uploads measured, one after another (default 3)")
    p.add_argument("--chunk-kib", type=int, default=1024, help="client read/send chunk in KiB (default 1024)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the byte-for-byte comparison after each upload")
    p.add_argument("--keep", action="store_true",
                   help="keep the received files until exit (default: delete each after checking, so page "
                        "cache and disk don't fill)")
    p.add_argument("--profile", type=lambda v: [x for x in v.split(",") if x], default=[],
                   help="extra uploads (not in the figures) under py-spy and/or perf, "
                        "e.g. --profile py-spy,perf")
    p.add_argument("--py-spy", help="path to the py-spy binary (default: the one on PATH)")
    p.add_argument("--tmp-dir", help="where the temporary folder goes (default: the system's); the file, "
                                     "PostgreSQL and VAR_DIR all live there")
    add_shared_arguments(p, "extra environment for Granian (repeatable)")
    args = p.parse_args(argv)
    if not set(args.profile) <= {"py-spy", "perf"}:
        p.error("--profile takes py-spy and/or perf")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(summary(results), flush=True)
    write_results(results, args.json, "upload")
    failed = "error" in results or any("error" in r for r in results["uploads"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
