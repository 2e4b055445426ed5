"""Persisting received activities: idempotent by activity id, committed in groups.

Inbox requests arriving together are written together: each request adds its row to the
next batch and waits; one `INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING`
commits the whole batch in one round trip, and one job is enqueued for it. A request is
answered only after its row is committed (and its processing enqueued), so nothing
acknowledged is lost; a repeat of an activity id, in the same batch or later, is never
stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from federation.activitypub.inbox_activities import InboxEnvelope
from service.db.engine import Database
from service.db.models import InboxActivity
from service.db.transactions import Transactions
from service.remote.actors import LearnedKey, record_remote_actors_sync
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import PROCESS_INBOX_ACTIVITIES

log = logging.getLogger(__name__)

MAX_BATCH = 500


def processing_job_id(inbox_activity_id: int) -> str:
    return f"inbox:{inbox_activity_id}"


def batch_job_id(inbox_activity_ids: Sequence[int]) -> str:
    # Unique per batch: arq drops a job whose id is still known, and row ids can repeat
    # (a database restored or reset under the same Redis). Processing is idempotent, so a
    # batch enqueued twice is harmless.
    return f"inbox-batch:{inbox_activity_ids[0]}:{uuid.uuid4().hex[:12]}"


class InboxUnavailable(Exception):
    """The activity could not be stored (database down); the sender should retry."""


@dataclass(slots=True)
class _Pending:
    values: dict[str, Any]
    done: asyncio.Future[int | None]


class InboxWriter:
    def __init__(
        self,
        database: Database,
        queue: Callable[[], JobQueue | None],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._database = database
        self._queue = queue
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        # Keys learned while verifying requests, committed with the next batch.
        self._keys: dict[str, LearnedKey] = {}
        self._drainer: asyncio.Task[None] | None = None
        # On SQLite a whole batch is one trip to a writer thread, so the write lock is held
        # only while SQLite works (the worker waits for it otherwise).
        self._transactions = Transactions(database, "inbox")
        self._statement = _insert_statement(database.is_sqlite)

    def record_key(self, learned: LearnedKey) -> None:
        """Commit a verified key with the next batch (the verifier holds it in memory
        meanwhile; if that commit fails it is fetched again after a restart)."""
        self._keys[learned.owner] = learned
        self._start_draining()

    def _start_draining(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())

    async def store(
        self,
        envelope: InboxEnvelope,
        document: dict[str, Any],
        *,
        key_id: str,
        account_id: int | None,
    ) -> int | None:
        """Commit the activity and enqueue its processing; return its row id, or None when
        that activity id was already received. Raises InboxUnavailable."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Pending(
                {
                    "activity_uri": envelope.activity_id,
                    "account_id": account_id,
                    "actor_uri": envelope.actor,
                    "activity_type": envelope.activity_type,
                    "document": document,
                    "key_id": key_id[:2048],
                    "state": "received",
                    "received_at": datetime.now(UTC),
                },
                done,
            )
        )
        self._start_draining()
        return await done

    async def _drain(self) -> None:
        # One turn of the event loop lets the requests that arrived together join the batch.
        await asyncio.sleep(0)
        while self._pending or self._keys:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            keys, self._keys = list(self._keys.values()), {}
            try:
                ids = await self._insert([item.values for item in batch], keys)
            except Exception as error:  # any driver error: the senders retry later
                log.warning("storing %d inbox activities failed: %s", len(batch), error)
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(InboxUnavailable(str(error)))
                continue
            new_ids = [row_id for row_id in ids if row_id is not None]
            queue = self._queue()
            if new_ids and queue is not None:
                await queue.enqueue(PROCESS_INBOX_ACTIVITIES, new_ids, job_id=batch_job_id(new_ids))
            for item, row_id in zip(batch, ids, strict=True):
                if not item.done.done():
                    item.done.set_result(row_id)

    async def close(self) -> None:
        """Let go of the writer connection (at shutdown, once requests are answered)."""
        await self._transactions.close()

    async def _insert(self, rows: list[dict[str, Any]], keys: list[LearnedKey]) -> list[int | None]:
        inserted = await self._transactions.run(_write_batch, self._statement, rows, keys)
        # A row id goes to the first request carrying that activity id; repeats get None.
        return [inserted.pop(str(row["activity_uri"]), None) for row in rows]


def _insert_statement(is_sqlite: bool) -> Any:
    # One statement executed with many parameter sets: SQLAlchemy renders it as a single
    # multi-row INSERT ("insertmanyvalues") without compiling it again.
    table = InboxActivity.__table__
    return (
        (sqlite.insert if is_sqlite else postgresql.insert)(table)
        .on_conflict_do_nothing(index_elements=[table.c.activity_uri])
        .returning(table.c.id, table.c.activity_uri)
    )


def _write_batch(
    connection: Connection, statement: Any, rows: list[dict[str, Any]], keys: list[LearnedKey]
) -> dict[str, int]:
    """The batch's keys and activities in one transaction; the new rows' ids by activity id."""
    record_remote_actors_sync(connection, keys=keys)
    if not rows:
        return {}
    return {str(uri): int(row_id) for row_id, uri in connection.execute(statement, rows)}
