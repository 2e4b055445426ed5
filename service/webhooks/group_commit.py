"""Group commit for webhook deliveries: concurrent requests share one INSERT and one commit.

Each request still waits until its own row is committed before it answers, so nothing
accepted is lost; under load, the rows that arrived while the previous commit was running go
to the database together, which is what lets one process accept thousands of webhooks a second
on SQLite as well as PostgreSQL.

On PostgreSQL the batch runs on a pooled async connection. On a SQLite file it runs on one
connection in a thread of its own, the transaction in one go: SQLite takes one writer at a
time anyway, and through aiosqlite each statement, fetch and commit would be a separate trip
to another thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, Table, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.db.engine import Database
from service.db.models import WebhookEvent
from service.db.transactions import Transactions

log = logging.getLogger(__name__)

MAX_BATCH = 200
# Event ids per processing job, and ids kept waiting for Redis before the sweeper's turn.
MAX_JOB_EVENTS = 500
MAX_UNANNOUNCED = 10_000
CLOSE_SECONDS = 5.0
# The table rather than the mapped class: Core statements skip the ORM's per-row bookkeeping.
_EVENTS: Table = WebhookEvent.__table__  # type: ignore[assignment]
_EARLIER = select(
    _EVENTS.c.id, _EVENTS.c.source, _EVENTS.c.delivery_key, _EVENTS.c.state, _EVENTS.c.result
)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    source: str
    key: str
    event_type: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    event_id: int
    duplicate: bool
    state: str
    result: dict[str, Any] | None


class WebhookEventWriter:
    """`after_commit` receives the ids of the rows batches added, to enqueue their processing.

    It runs beside the writes, not between a commit and its answers: a commit is what makes a
    delivery accepted, and the sweeper re-enqueues committed rows whose job was lost, so the
    answer need not wait for Redis (nor stall while Redis is unreachable). Ids that commit
    while an enqueue is under way go out together in the next one.
    """

    def __init__(
        self,
        database: Database,
        after_commit: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        self.database = database
        self.after_commit = after_commit
        self._insert = insert_statement(database.is_sqlite)
        self._waiting: list[tuple[PendingDelivery, asyncio.Future[StoredDelivery]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._unannounced: list[int] = []
        self._announcer: asyncio.Task[None] | None = None
        self._transactions = Transactions(database, "webhook")

    async def store(self, delivery: PendingDelivery) -> StoredDelivery:
        future: asyncio.Future[StoredDelivery] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        if self._flusher is None or self._flusher.done():
            # A task of its own, so a client hanging up cannot cancel other requests' commit.
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Finish the writes and enqueues under way, then let go of the writer connection
        (at shutdown, before Redis and the database close)."""
        for task in (self._flusher, self._announcer):
            if task is not None and not task.done():
                await asyncio.wait({task}, timeout=CLOSE_SECONDS)
        await self._transactions.close()

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            deliveries = [delivery for delivery, _ in batch]
            try:
                outcomes = await self._transactions.run(write_batch, self._insert, deliveries)
            except Exception as exc:  # noqa: BLE001 - every waiter must hear about the failure
                log.warning("storing %d webhook deliveries failed: %r", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
            self._announce([outcome.event_id for outcome in outcomes if not outcome.duplicate])

    def _announce(self, event_ids: list[int]) -> None:
        if not event_ids or self.after_commit is None:
            return
        self._unannounced.extend(event_ids)
        if len(self._unannounced) > MAX_UNANNOUNCED:
            # Redis has been away for a while: the sweeper finds these rows in the database.
            del self._unannounced[:-MAX_UNANNOUNCED]
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.create_task(self._announce_all())

    async def _announce_all(self) -> None:
        assert self.after_commit is not None
        while self._unannounced:
            event_ids = self._unannounced[:MAX_JOB_EVENTS]
            del self._unannounced[:MAX_JOB_EVENTS]
            try:
                await self.after_commit(event_ids)
            except Exception as exc:  # noqa: BLE001 - best effort; the sweeper covers it
                log.warning("enqueueing %d webhook events failed: %r", len(event_ids), exc)


def write_batch(
    connection: Connection, insert: Insert, batch: list[PendingDelivery]
) -> list[StoredDelivery]:
    """Insert the batch in the connection's transaction; a delivery seen before (same source
    and key, in an earlier batch or earlier in this one) comes back as a duplicate."""
    rows = [
        {
            "source": item.source,
            "delivery_key": item.key,
            "event_type": item.event_type[:64],
            "headers": item.headers,
            "body": item.body,
            "state": "received",
        }
        for item in batch
    ]
    inserted = {
        (row.source, row.delivery_key): int(row.id) for row in connection.execute(insert, rows)
    }
    earlier: dict[tuple[str, str], Any] = {}
    missing = {(item.source, item.key) for item in batch} - inserted.keys()
    if missing:
        found = connection.execute(
            _EARLIER.where(tuple_(_EVENTS.c.source, _EVENTS.c.delivery_key).in_(sorted(missing)))
        )
        earlier = {(row.source, row.delivery_key): row for row in found}
    outcomes: list[StoredDelivery] = []
    first_seen: set[tuple[str, str]] = set()
    for item in batch:
        identity = (item.source, item.key)
        if identity in inserted and identity not in first_seen:
            first_seen.add(identity)
            outcomes.append(StoredDelivery(inserted[identity], False, "received", None))
        elif identity in inserted:
            # The same delivery twice in one batch: the second is a redelivery.
            outcomes.append(StoredDelivery(inserted[identity], True, "received", None))
        else:
            row = earlier[identity]
            outcomes.append(StoredDelivery(int(row.id), True, str(row.state), row.result))
    return outcomes


def insert_statement(is_sqlite: bool) -> Insert:
    """The batch INSERT, built once: the rows go as execute parameters, so SQLAlchemy finds
    the compiled form in its cache instead of building a cache key over every body, and
    renders one multi-row INSERT per batch ("insertmanyvalues")."""
    dialect_insert = sqlite_insert if is_sqlite else postgresql_insert
    return (
        dialect_insert(_EVENTS)
        .on_conflict_do_nothing(index_elements=["source", "delivery_key"])
        .returning(_EVENTS.c.id, _EVENTS.c.source, _EVENTS.c.delivery_key)
    )
