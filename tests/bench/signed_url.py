"""What issuing a signed link costs: the signing itself (local storage's HMAC and S3's presigning), and a whole
`/i/<id>/stream` request that checks access and answers 302, served by Granian.

    .venv/bin/python tests/bench/signed_url.py
    .venv/bin/python tests/bench/signed_url.py --help
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parents[1]), str(HERE)) if p not in sys.path]

import psycopg  # noqa: E402
from common import (  # noqa: E402
    SECRET_KEY,
    Server,
    add_shared_arguments,
    load_at_start,
    log,
    machine_info,
    make_workdir,
    start_database,
    write_results,
)

from app.media.storage import LocalStorage, S3Storage  # noqa: E402


def per_call(fn: Any, n: int) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return round(best, 1)


def signing(workdir: Path, n: int) -> dict[str, float]:
    local = LocalStorage(workdir / "media", SECRET_KEY)
    s3 = S3Storage("http://127.0.0.1:9", "us-east-1", "media", "key", "secret")  # presigning needs no network
    args = {"filename": "Night Drive.mp3", "content_type": "audio/mpeg", "ttl_seconds": 600, "disposition": "attachment"}
    return {
        "local_us": per_call(lambda i: local.signed_url(f"uploads/abc{i}/song.mp3", **args), n),
        "s3_us": per_call(lambda i: s3.signed_url(f"uploads/abc{i}/song.mp3", **args), n),
    }


def seed(url: str) -> str:
    """A creator with a free, published audio item whose file is ready; returns the item's public id."""
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (email, username, display_name, password_hash) VALUES "
                            "('maker@example.com', 'maker', 'Maker', 'x') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO creators (user_id, tier) VALUES (%s, 'basic')", (user,))
        item = conn.execute(
            "INSERT INTO items (public_id, creator_id, type, title, price_mode, status, published_at) VALUES "
            "('benchfree0001', %s, 'audio', 'Free Tune', 'free', 'published', now()) RETURNING id", (user,)
        ).fetchone()[0]
        version = conn.execute("INSERT INTO item_versions (item_id, label, published_at) VALUES (%s, '1.0', now()) "
                               "RETURNING id", (item,)).fetchone()[0]
        conn.execute(
            "INSERT INTO uploads (public_id, creator_id, item_id, version_id, purpose, filename, size_bytes, state, "
            "storage_key, mime) VALUES ('benchupload01', %s, %s, %s, 'file', 'tune.mp3', 4000000, 'ready', "
            "'uploads/benchupload01/tune.mp3', 'audio/mpeg')", (user, item, version))
    return "benchfree0001"


def wrk(url: str, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, Any] = {"connections": connections}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec"):
            found["requests_per_s"] = float(parts[1])
        elif parts[:1] in (["50%"], ["99%"]):
            found[f"p{parts[0][:-1]}"] = parts[1]
        elif "Non-2xx" in line:
            found["non_2xx_or_3xx"] = int(parts[-1])
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--seconds", type=int, default=10)
    add_shared_arguments(p, "extra environment for Granian")
    args = p.parse_args(argv)
    results: dict[str, Any] = {"machine": machine_info("litestar", "granian", "boto3"), "load_at_start": load_at_start()}
    workdir = make_workdir("fairshelf-bench-links-")
    results["signing"] = signing(workdir, args.calls)
    log(f"signing one link: {results['signing']}")
    url = start_database(workdir, "fairshelf_bench_links")
    item = seed(url)
    server = Server(url, 1, workdir / "server.log", {"VAR_DIR": str(workdir / "var"), **dict(args.server_env)})
    server.start()
    try:
        stream = f"{server.base}/i/{item}/stream"
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", stream], capture_output=True, check=True)  # warm-up
        # wrk does not follow redirects: each answer is the 302 with the signed link.
        results["stream_c1"] = wrk(stream, 1, args.seconds)
        results["stream_c16"] = wrk(stream, 16, args.seconds)
        results["health_c16"] = wrk(f"{server.base}/health", 16, args.seconds)
    finally:
        server.stop()
    log(f"/stream at 1 connection: {results['stream_c1']}; at 16: {results['stream_c16']}; "
        f"/health at 16: {results['health_c16']}")
    write_results(results, args.json, "signed-url")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
