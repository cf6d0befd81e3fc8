"""Engine and session factory built from settings; nothing is created at import time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.settings import Settings

PING_AFTER_IDLE_SECONDS = 10.0


def make_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    connect_args: dict[str, object] = {"application_name": "fairshelf"}
    if not settings.db_prepared_statements:
        # PgBouncer in transaction mode cannot keep server-side prepared statements between transactions.
        connect_args["prepare_threshold"] = None
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_recycle": 1800,
        "connect_args": connect_args,
    }
    options.update(overrides)
    engine = create_async_engine(settings.sqlalchemy_url, **options)
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: AsyncEngine, after: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection before use only when it has been idle for `after` seconds.

    A connection that sat in the pool may have died with a database restart, so it is pinged (and silently
    replaced when dead) before a request gets it. One that was in use moments ago is not: pinging every
    checkout (SQLAlchemy's pool_pre_ping) costs a round trip per request, about a tenth of a public page's CPU.
    A restart within those seconds can still fail the requests in flight, as it would anyway.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc  # the pool reconnects

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_reader_engine(settings: Settings) -> AsyncEngine:
    """The pool of requests that only read (public pages), its connections in autocommit for good: every
    statement commits on its own (no BEGIN, no ROLLBACK, so prepared statements are kept), and nothing is
    switched back and forth at each checkout, as a per-session isolation level would."""
    return make_engine(settings, isolation_level="AUTOCOMMIT")


def make_reader_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_pool(settings: Settings) -> AsyncConnectionPool:
    """Plain psycopg connections in autocommit for the hottest page (the item page), which reads only through
    `Compiled` statements: a session's machinery cost more than its two reads. Opened by the app at start-up.
    Like the engines' pools, a connection is pinged before use only after sitting idle (see ping_when_idle)."""
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "fairshelf"}
    if not settings.db_prepared_statements:
        kwargs["prepare_threshold"] = None
    returned: dict[int, float] = {}  # id(connection) -> when it came back; connections cannot hold attributes

    async def check(connection: psycopg.AsyncConnection[Any]) -> None:
        at = returned.get(id(connection))
        if at is None or time.monotonic() - at >= PING_AFTER_IDLE_SECONDS:
            await connection.execute("")  # raises on a dead connection: the pool replaces it

    async def reset(connection: psycopg.AsyncConnection[Any]) -> None:
        if len(returned) > 1000:  # ids of connections long closed; forgetting them costs one ping each
            returned.clear()
        returned[id(connection)] = time.monotonic()

    return AsyncConnectionPool(settings.libpq_url, kwargs=kwargs, min_size=1,
                               max_size=settings.db_pool_size + settings.db_max_overflow, open=False, check=check,
                               reset=reset, name="fairshelf-reads", max_lifetime=1800)


async def provide_reads(state: State) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Litestar dependency: a connection of the read pool for the request (see make_read_pool)."""
    async with state.read_pool.connection() as connection:
        yield connection


async def provide_reader(state: State) -> AsyncIterator[AsyncSession]:
    """Litestar dependency for read-only pages (see app/web/caching.public_page)."""
    async with state.reader() as session:
        yield session


async def provide_db(state: State) -> AsyncIterator[AsyncSession]:
    """Litestar dependency: one session per request, rolled back if the handler did not commit."""
    async with state.sessionmaker() as session:
        yield session


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session, inside the session's transaction: for hot paths where
    SQLAlchemy's per-statement cost matters (the worker's payment events). Commit and roll back through the
    session as usual."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection  # type: ignore[no-any-return]


# How handlers ask for the request's database session, or for a read pool connection (the item page).
Db = NamedDependency[AsyncSession]
Reads = NamedDependency[psycopg.AsyncConnection[Any]]


class Compiled:
    """A statement compiled once into psycopg's SQL, for the hottest reads (the item page): run straight on the
    session's psycopg connection, it skips SQLAlchemy's per-execution work. Rows are named tuples with the
    labels SQLAlchemy gave the columns; only plain column types belong here (no result processors)."""

    def __init__(self, statement: Any) -> None:
        from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

        compiled = statement.compile(dialect=psycopg_dialect.dialect())
        self.sql: str = str(compiled)
        self.defaults: dict[str, Any] = dict(compiled.params)

    async def first(self, source: AsyncSession | psycopg.AsyncConnection[Any], **params: Any) -> Any:
        """The first row, on a session's own connection (in its transaction) or on a plain psycopg one."""
        connection = source if isinstance(source, psycopg.AsyncConnection) else await driver_connection(source)
        async with connection.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(self.sql, {**self.defaults, **params})
            return await cursor.fetchone()
