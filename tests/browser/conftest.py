"""Browser journeys: the real web server (Granian) and job worker as subprocesses on their own database, driven by
Debian's Chromium through Playwright.

The live server uses a separate database ("fairshelf_browser"), so the per-test truncation of the HTTP tests'
database never touches it; browser tests keep each other apart with unique usernames instead.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, Response, expect

from app.db import embedded
from app.db.migrate import upgrade
from app.settings import ROOT, Settings

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = ROOT / "test-results" / "browser"
SERVER_SECRET = "browser-test-secret-key-that-is-long-enough-0123456789"
FORM_RERENDER = "Failed to load resource: the server responded with a status of 422 "
# Lines our logging (app/logs.py) or Granian write when something broke on the server side.
SERVER_TROUBLE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser journeys after every other test.

    Playwright's sync API keeps its event loop registered as the thread's running loop from the moment the
    session-scoped `playwright` fixture starts until the session ends, so any later test calling asyncio.run()
    would fail with "asyncio.run() cannot be called from a running event loop".
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]
    _offsets: dict[str, int] = field(default_factory=dict)

    def mark_logs(self) -> None:
        """Remember where the logs end now, so `log_trouble` only reports what happens afterwards."""
        self._offsets = {name: path.stat().st_size for name, path in self.logs.items()}

    def log_trouble(self) -> list[str]:
        """Error lines and tracebacks the server or worker logged since `mark_logs`."""
        found = []
        for name, path in self.logs.items():
            with path.open("rb") as f:
                f.seek(self._offsets.get(name, 0))
                text = f.read().decode(errors="replace")
            found += [f"{name}: {line}" for line in text.splitlines() if SERVER_TROUBLE.search(line)]
        return found

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} exited with {proc.returncode}:\n{self.logs[name].read_text()[-4000:]}")


def _wait_healthy(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{server.url}/health did not answer 200 within {timeout:.0f}s (last: {last!r}):\n"
                       + server.logs["web server"].read_text()[-4000:])


@pytest.fixture(scope="session")
def live_server(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Granian serving the app plus `python -m app worker`, both as a deployment would run them."""
    url = embedded.ensure_database(pg_admin_url, "fairshelf_browser", fresh=True)
    upgrade(Settings(mode="test", database_url=url))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MODE": "test",
        "DATABASE_URL": url,
        "SECRET_KEY": SERVER_SECRET,
        "BASE_URL": base_url,
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "WORKER_POLL_SECONDS": "0.2",
        "DEV_MAILBOX": "true",
        "SMTP_HOST": "",
        "PYTHONUNBUFFERED": "1",
        # Files of its own: the worker's sweep deletes stored files its database does not know.
        "VAR_DIR": str(tmp_path_factory.mktemp("live-var")),
    }
    log_dir = tmp_path_factory.mktemp("live-server")
    commands = {
        "web server": [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "app.main:app_from_env",
                       "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
                       "--no-ws"],
        "worker": [sys.executable, "-m", "app", "worker"],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for name, command in commands.items():
            logs[name] = log_dir / f"{name.replace(' ', '-')}.log"
            with logs[name].open("wb") as log:
                processes[name] = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        server = LiveServer(base_url, processes, logs)
        _wait_healthy(server)
        yield server
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    """pytest-playwright gives every browser context this base URL, so tests can `page.goto("/login")`."""
    return live_server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (no browser downloads), headless."""
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM") or "/usr/bin/chromium",
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(autouse=True)
def _server_stays_healthy(live_server: LiveServer) -> Iterator[None]:
    """Fail a journey if the server or worker logged an error or traceback while it ran, or died."""
    live_server.mark_logs()
    yield
    live_server.check_alive()
    trouble = live_server.log_trouble()
    assert not trouble, "the server logged errors during this test:\n" + "\n".join(trouble)


class ConsoleWatch:
    """Console errors (CSP violations, failed loads, script errors) and uncaught exceptions of watched pages.

    One console error is by design and left out: Chromium logs "Failed to load resource … 422" when a plain form
    post is answered with the form re-rendered with its field messages (the app's 422 convention), even though
    the page shows fine. Only 422 answers to page navigations are excused; a 422 for a script or an HTMX call still
    counts, and the journeys assert on the messages the re-rendered form shows.
    """

    def __init__(self) -> None:
        self._messages: list[tuple[str, str]] = []
        self._form_rerenders: set[str] = set()

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("response", self._on_response)
        return page

    @property
    def errors(self) -> list[str]:
        return [
            f"{text} ({url})" for text, url in self._messages
            if not (url in self._form_rerenders and text.startswith(FORM_RERENDER))
        ]

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._messages.append((message.text, (message.location or {}).get("url", "")))

    def _on_page_error(self, error: Error) -> None:
        self._messages.append((f"uncaught: {error.message}", ""))

    def _on_response(self, response: Response) -> None:
        if response.status == 422 and response.request.is_navigation_request():
            self._form_rerenders.add(response.url)


@pytest.fixture
def console(page: Page) -> ConsoleWatch:
    """Watches `page` from the start; call `console.watch(other_page)` for pages of other contexts."""
    watch = ConsoleWatch()
    watch.watch(page)
    return watch


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


PASSWORD = "correct horse battery"


def sign_up(page: Page, username: str, name: str) -> None:
    """Sign up through the form, as a person does (the username is checked on blur), ending on /account."""
    page.goto("/signup")
    page.get_by_label("Email", exact=True).fill(f"{username}@example.com")
    field = page.locator("#username")
    field.fill(username)
    field.blur()
    expect(page.locator("#username-help")).to_have_text(f"✓ {username} is available.")
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/account$"))
