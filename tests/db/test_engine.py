"""Pooled connections: one that sat idle is checked before use and replaced when the database dropped it; one
used moments ago is handed out without that round trip."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.engine import ping_when_idle
from app.settings import Settings


async def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()


def _terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.parametrize("idle_after", [0.0, 3600.0])
def test_an_idle_connection_that_died_is_replaced(database_url, idle_after):
    async def scenario() -> int:
        engine = create_async_engine(Settings(database_url=database_url).sqlalchemy_url, pool_size=1)
        ping_when_idle(engine, after=idle_after)
        try:
            pid = await _backend_pid(engine)
            _terminate(database_url, pid)  # e.g. the database restarted while the connection sat in the pool
            await asyncio.sleep(0.05)
            return await _backend_pid(engine)
        finally:
            await engine.dispose()

    if idle_after == 0.0:
        assert asyncio.run(scenario()) > 0  # pinged, found dead, replaced: the caller never noticed
    else:
        with pytest.raises(DBAPIError):  # used moments ago, so not pinged: the dead connection surfaces
            asyncio.run(scenario())


@pytest.mark.parametrize("idle_after", [0.0, 3600.0])
def test_the_read_pool_replaces_an_idle_connection_that_died(database_url, idle_after, monkeypatch):
    """The item page's plain psycopg pool follows the same rule as the engines' pools."""
    from app.db import engine as engine_module

    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", idle_after)

    async def scenario() -> int:
        pool = engine_module.make_read_pool(Settings(database_url=database_url, db_pool_size=1, db_max_overflow=0))
        await pool.open(wait=True)
        try:
            async with pool.connection() as connection:
                pid = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
            _terminate(database_url, pid)
            await asyncio.sleep(0.05)
            async with pool.connection() as connection:
                return (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
        finally:
            await pool.close()

    if idle_after == 0.0:
        assert asyncio.run(scenario()) > 0
    else:
        with pytest.raises(psycopg.OperationalError):
            asyncio.run(scenario())
