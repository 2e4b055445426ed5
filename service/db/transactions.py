"""Whole transactions in one trip: the unit of work is a synchronous function.

On a SQLite file the work runs on one connection in a thread of its own: through aiosqlite
every statement, fetch and commit is a separate trip to the connection's thread and back to
the event loop, which costs more CPU than SQLite itself, and holds SQLite's single write
lock across those trips while every other writer waits (in the busy handler's sleeps of up
to 100 ms). In a thread the whole transaction is one trip. On PostgreSQL (or an in-memory
SQLite database, which another connection would not see) it runs on a pooled async
connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from service.db.engine import Database, sqlite_writer_engine

_T = TypeVar("_T")


class Transactions:
    """Runs a synchronous unit of work `work(connection, *args)` in one transaction of its
    own (see the module's docstring)."""

    def __init__(self, database: Database, name: str = "database") -> None:
        self.database = database
        self._engine = sqlite_writer_engine(database.url) if database.is_sqlite else None
        self._thread = ThreadPoolExecutor(1, f"{name}-writer") if self._engine is not None else None

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        engine, thread = self._engine, self._thread
        if engine is None or thread is None:
            async with self.database.engine.begin() as connection:
                return await connection.run_sync(work, *args)

        def transaction() -> _T:
            with engine.begin() as connection:
                return work(connection, *args)

        return await asyncio.get_running_loop().run_in_executor(thread, transaction)

    async def close(self) -> None:
        engine, thread = self._engine, self._thread
        self._engine = self._thread = None
        if engine is not None and thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown(wait=False)
