"""The command line as an operator uses it: real processes against a real database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT, TEST_SECRET


def run_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MODE": "test", "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET, **env}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_seed_loads_demo_data_once(database_url, db):
    first = run_cli(database_url, "seed")
    assert first.returncode == 0, first.stderr
    assert "demo data loaded" in first.stdout
    count = db.execute("SELECT count(*) FROM users").fetchone()[0]
    assert count >= 3
    second = run_cli(database_url, "seed")
    assert "already present" in second.stdout
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == count


def test_create_admin(database_url, db):
    made = run_cli(database_url, "create-admin", "--email", "root@example.com", "--username", "boss",
                   ADMIN_PASSWORD="a very long admin password")
    assert made.returncode == 0, made.stderr
    assert db.execute("SELECT is_admin FROM users WHERE username = 'boss'").fetchone()[0] is True
    weak = run_cli(database_url, "create-admin", "--email", "x@example.com", "--username", "boss2",
                   ADMIN_PASSWORD="short")
    assert weak.returncode != 0 and "10–128 characters" in weak.stderr
    bad_name = run_cli(database_url, "create-admin", "--email", "y@example.com", "--username", "No Spaces",
                       ADMIN_PASSWORD="a very long admin password")
    assert bad_name.returncode != 0 and "Username must be" in bad_name.stderr


def test_migrate_is_idempotent(database_url):
    result = run_cli(database_url, "migrate")
    assert result.returncode == 0 and "migrated to head" in result.stdout


def test_production_mode_refuses_to_serve_with_insecure_settings(database_url):
    result = run_cli(database_url, "serve", MODE="production", SECRET_KEY="weak")
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr and "SECRET_KEY" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dev_runs_everything_from_nothing_and_ctrl_c_stops_it(tmp_path):
    """What `make run` does: embedded PostgreSQL, migrations, demo data, web server and worker; SIGINT ends all."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(VAR_DIR=str(tmp_path / "var"), PORT=str(port), MODE="development")
    process = subprocess.Popen([sys.executable, "-m", "app", "dev"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        assert "Night Bus Loops" in body and "Nadia Okafor" in body, "the home page shows the demo items"
        # The demo files went through the real pipeline: the worker made the covers' thumbnails.
        deadline = time.monotonic() + 30
        while body.count('<img src="/media/uploads/') < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                body = response.read().decode()
        assert body.count('<img src="/media/uploads/') == 4, "every demo item shows its processed cover"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "stopped" in output
        pgdata = tmp_path / "var" / "pgdata"
        assert (pgdata / "PG_VERSION").exists() and not (pgdata / "postmaster.pid").exists()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            raise AssertionError("the web server is still answering after Ctrl-C")
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
