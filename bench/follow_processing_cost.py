"""CPU per Follow of the worker's inbox processing alone, in this process.

``follows`` received Follows of distinct actors, whose documents were stored when their
signatures were verified (as on a first contact), are applied the way the worker applies
what the inbox stored together: in jobs of ``batch`` ids through `InboxProcessor.
process_many`, each Follow becoming a follower row and an Accept with its delivery. No
network and no queue, so the figure is the database statements and the Python around them
(user and system CPU of this process; on PostgreSQL the server's own work is not in it).
Also reports the statements per Follow and how many distinct statement texts were sent
(each new text is a fresh prepare on PostgreSQL).

    python -m bench.follow_processing_cost --follows 5000 [--database postgres] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import resource
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event, func, insert, select

from bench.harness.private_postgres import PrivatePostgres
from federation.activitypub.urls import InstanceUrls
from service.accounts.store import AccountStore
from service.db.engine import Database
from service.db.migrate import upgrade_async
from service.db.models import Activity, Follower, InboxActivity, RemoteActor
from service.inbox.processing import InboxProcessor

BASE_URL = "http://relay.bench"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _received_follows(database: Database, follows: int) -> list[int]:
    now = datetime.now(UTC)
    actor = f"{BASE_URL}/users/news"
    remote_actors: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    for number in range(follows):
        host = f"host{number // 10}.bench"
        follower = f"https://{host}/users/u{number % 10}"
        remote_actors.append(
            {
                "uri": follower,
                "host": host,
                "inbox": f"{follower}/inbox",
                "shared_inbox": f"https://{host}/inbox",
                "key_id": f"{follower}#main-key",
                "public_key_pem": "unused",
                "also_known_as": [],
                "fetched_at": now,
            }
        )
        activity_id = f"https://{host}/follows/{number}"
        received.append(
            {
                "activity_uri": activity_id,
                "account_id": None,
                "actor_uri": follower,
                "activity_type": "Follow",
                "document": {
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": activity_id,
                    "type": "Follow",
                    "actor": follower,
                    "object": actor,
                },
                "key_id": f"{follower}#main-key",
                "state": "received",
                "received_at": now,
            }
        )
    async with database.transaction() as session:
        await AccountStore(session).create("news")
        await session.execute(insert(RemoteActor), remote_actors)
        await session.execute(insert(InboxActivity), received)
        return list(
            (await session.execute(select(InboxActivity.id).order_by(InboxActivity.id))).scalars()
        )


async def measure(follows: int, batch: int, database_kind: str, profile: bool) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        if database_kind == "postgres":
            postgres = PrivatePostgres()
            await asyncio.to_thread(postgres.initialise)
            await asyncio.to_thread(postgres.start)
            stack.callback(postgres.destroy)
            url = postgres.url()
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite+aiosqlite:///{directory / 'relay.db'}"
        await upgrade_async(url)
        database = Database(url)
        stack.push_async_callback(database.dispose)
        row_ids = await _received_follows(database, follows)

        async def unused_fetch(url: str) -> dict[str, Any]:
            raise AssertionError(f"the stored document should have been used, not {url}")

        processor = InboxProcessor(database, InstanceUrls(BASE_URL), unused_fetch)
        statements: Counter[str] = Counter()

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements[statement] += 1

        event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        profiler = cProfile.Profile() if profile else None
        cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        states: Counter[str | None] = Counter()
        for start in range(0, len(row_ids), batch):
            states.update(await processor.process_many(row_ids[start : start + batch]))
        if profiler is not None:
            profiler.disable()
        cpu = _cpu_seconds() - cpu_before
        wall = time.perf_counter() - wall_before
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
        async with database.session() as session:
            followers = await session.scalar(select(func.count()).select_from(Follower))
            accepts = await session.scalar(select(func.count()).select_from(Activity))
    result: dict[str, Any] = {
        "database": database_kind,
        "follows": follows,
        "batch": batch,
        "states": {str(state): n for state, n in states.items()},
        "followers": followers,
        "accepts": accepts,
        "cpu_us_per_follow": round(cpu * 1e6 / follows, 1),
        "wall_us_per_follow": round(wall * 1e6 / follows, 1),
        "statements_per_follow": round(sum(statements.values()) / follows, 3),
        "distinct_statements": len(statements),
    }
    if profiler is not None:
        stats = pstats.Stats(profiler)
        entries = stats.stats.items()  # type: ignore[attr-defined]
        for label, column in (("own", 2), ("inclusive", 3)):
            ranked = sorted(entries, key=lambda item: item[1][column], reverse=True)
            result[f"{label}_time_top"] = [
                [f"{name} ({Path(file).name}:{line})", round(times[column] * 1e6 / follows, 1)]
                for (file, line, name), times in ranked[:30]
                if label == "own" or "/service/" in file or "/federation/" in file
            ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.follow_processing_cost")
    parser.add_argument("--follows", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile: own and inclusive µs per Follow"
    )
    args = parser.parse_args()
    result = uvloop.run(measure(args.follows, args.batch, args.database, args.profile))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
