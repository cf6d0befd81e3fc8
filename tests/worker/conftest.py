"""Fixtures for the queue and worker tests: the tables the sample jobs write to, and worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.worker.helpers import Workers
from tests.worker.sample_jobs import TABLES


@pytest.fixture(autouse=True)
def job_tables(database_url: str) -> None:
    """The sample jobs' tables; emptied after each test by the shared truncation like every other table."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in TABLES:
            conn.execute(statement)


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Workers]:
    spawned = Workers(database_url, tmp_path)
    try:
        yield spawned
    finally:
        spawned.kill_all()
