"""Fixtures for the mail tests: worker processes that deliver the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.helpers import Workers


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Workers]:
    spawned = Workers(database_url, tmp_path)
    try:
        yield spawned
    finally:
        spawned.kill_all()
