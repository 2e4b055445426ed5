"""Database connection: one async engine per process, sessions per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Connections kept open to PostgreSQL. The API needs one per request that holds a session
# at the same moment (webhooks and inbox deliveries share one writer connection each, so
# their concurrency does not count); overflow connections are closed again on return, so
# the steady state must fit in the pool or every burst reconnects.
POOL_SIZE = 20
POOL_OVERFLOW = 10
# Seconds a request waits for a pooled connection before it fails (and answers 503).
POOL_TIMEOUT = 10.0
# Replace connections older than this, so server- or proxy-side idle limits never hit one.
POOL_RECYCLE_SECONDS = 1800


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the worker writes; the busy timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def engine_options(url: str, *, echo: bool = False) -> dict[str, Any]:
    """`create_async_engine` options per backend.

    PostgreSQL runs without `pool_pre_ping`: a `SELECT 1` round trip on every checkout cost
    a fifth of the API's time under webhook load. A connection broken by a server restart
    instead fails its next statement with a disconnect error; SQLAlchemy then invalidates
    the whole pool, that one request answers 503, and the next ones connect afresh.
    """
    if url.startswith("sqlite"):
        return {"echo": echo, "connect_args": {"timeout": 30}}
    return {
        "echo": echo,
        "pool_size": POOL_SIZE,
        "max_overflow": POOL_OVERFLOW,
        "pool_timeout": POOL_TIMEOUT,
        "pool_recycle": POOL_RECYCLE_SECONDS,
        # The most recently used connection first: a quiet period lets the rest sit idle
        # instead of keeping every one of them warm.
        "pool_use_lifo": True,
    }


def sqlite_writer_engine(url: str) -> Engine | None:
    """A synchronous engine with one connection to the same SQLite file, for a writer thread.

    Through aiosqlite every statement, fetch and commit is a round trip to the connection's
    thread (a dozen per small transaction); a writer that runs its whole transaction in a
    thread of its own makes one. None for an in-memory database, which another connection
    would not see.
    """
    parsed = make_url(url)
    if not url.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    if "mode=memory" in url:
        return None
    engine = create_engine(
        parsed.set(drivername="sqlite"),
        pool_size=1,
        max_overflow=0,
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_sqlite)
    return engine


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **engine_options(url, echo=echo))
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _configure_sqlite)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
