"""Test fixtures: one embedded PostgreSQL for the session, the schema from the real migrations, and every test
isolated by truncating all tables afterwards. Nothing of ours is mocked."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from app.db import embedded
from app.db.migrate import upgrade
from app.main import create_app
from app.settings import Settings

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (or the one named by TEST_DATABASE_ADMIN_URL).

    Its directory is our own rather than pytest's tmp_path: pytest keeps those private (0700) and prunes old
    ones, which the server's own system user (when tests run as root) and concurrent runs trip over.
    """
    if url := os.environ.get("TEST_DATABASE_ADMIN_URL"):
        yield url
        return
    parent = Path(tempfile.mkdtemp(prefix="fairshelf-pg-"))
    parent.chmod(0o755)
    try:
        yield embedded.start(parent / "data", delete_on_exit=True)
    finally:
        embedded.stop(parent / "data")
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> str:
    url = embedded.ensure_database(pg_admin_url, "fairshelf_test", fresh=True)
    upgrade(Settings(mode="test", database_url=url))
    return url


def make_settings(database_url: str, **overrides: object) -> Settings:
    base = Settings(
        mode="test",
        database_url=database_url,
        secret_key=TEST_SECRET,
        base_url="http://testserver.local",
        # Cheap hashing keeps the suite fast; production uses the defaults (OWASP's minimum or above).
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        db_pool_size=3,
        db_max_overflow=2,
        worker_poll_seconds=0.2,
        worker_lease_seconds=5,
        page_cache_seconds=0,  # pages change between requests in tests; the cache's own tests turn it on
    )
    return base.with_(**overrides)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, var_dir=tmp_path / "var")


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain connection for arranging and asserting on what the database holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database_url" not in request.fixturenames:
        return
    url = request.getfixturevalue("database_url")
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver.local") as test_client:
        yield test_client


def csrf_token(client: TestClient) -> str:
    """The CSRF token a browser would have: the cookie set by the first page it loaded."""
    if "fairshelf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["fairshelf_csrf"]


def post_form(client: TestClient, url: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "_csrf_token": csrf_token(client)}, follow_redirects=False, **kwargs)


def sign_up(client: TestClient, username: str = "fan_one", email: str | None = None,
            password: str = "correct horse battery", display_name: str = "Fan One"):  # type: ignore[no-untyped-def]
    response = post_form(client, "/signup", {
        "email": email or f"{username}@example.com", "username": username,
        "display_name": display_name, "password": password,
    })
    assert response.status_code == 303, response.text
    return response


def log_in(client: TestClient, identifier: str, password: str = "correct horse battery"):  # type: ignore[no-untyped-def]
    return post_form(client, "/login", {"identifier": identifier, "password": password})


def last_email(db: psycopg.Connection, to: str, template: str) -> str:
    row = db.execute(
        "SELECT text_body FROM emails WHERE to_address = %s AND template = %s ORDER BY id DESC LIMIT 1", (to, template)
    ).fetchone()
    assert row is not None, f"no {template} email to {to}"
    return row[0]


def token_from(body: str) -> str:
    match = re.search(r"token=([A-Za-z0-9_.\-]+)", body)
    assert match, body
    return match.group(1)


ROOT = Path(__file__).resolve().parent.parent
