"""Stored-key lookups made together share one query, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from service.db.engine import Database
from service.inbox.key_lookups import BatchedKeyLookups
from service.remote.actors import LearnedKey, record_remote_actors


async def _record(database: Database, names: list[str]) -> None:
    keys = [
        LearnedKey(f"https://remote.example/users/{n}", f"https://remote.example/users/{n}#k", n)
        for n in names
    ]
    async with database.transaction() as session:
        await record_remote_actors(session, keys=keys)


def _key_id(name: str) -> str:
    return f"https://remote.example/users/{name}#k"


async def test_lookups_made_together_get_their_own_answers(database: Database) -> None:
    await _record(database, ["a", "b"])
    lookups = BatchedKeyLookups(database)

    found = await asyncio.gather(*(lookups.get(_key_id(n)) for n in ("a", "b", "nobody", "a")))

    owner = "https://remote.example/users/{}".format
    assert found == [(owner("a"), "a"), (owner("b"), "b"), None, (owner("a"), "a")]


async def test_lookups_made_together_share_one_query(database: Database) -> None:
    await _record(database, ["a", "b", "c"])
    lookups = BatchedKeyLookups(database)
    queries: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "remote_actors" in statement:
            queries.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await asyncio.gather(*(lookups.get(_key_id(n)) for n in ("a", "b", "c", "d")))
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)

    assert len(queries) == 1
