"""Counting webhook requests refused before storage, cheaply and across processes.

A refused webhook leaves no row behind, so `/metrics` cannot count it from the events table.
Writing a row per refusal would let a flood of bad requests become a flood of database writes;
instead each API process counts in memory and adds its counts to `webhook_rejections` in one
statement every few seconds (and at shutdown). Every process then reads the same totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.db.engine import Database
from service.db.models import WebhookRejection

log = logging.getLogger(__name__)

FLUSH_SECONDS: Final = 5.0
# Label values are bounded: a path outside the known sources counts as `unknown`.
SOURCES: Final = ("cms", "ghost", "forgejo", "github")
UNKNOWN_SOURCE: Final = "unknown"
# Why a request was refused, by the status it was answered with.
REASONS: Final = {
    400: "malformed",
    401: "signature",
    404: "unknown_source",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_fields",
    503: "unavailable",
}
OTHER_CLIENT_ERROR: Final = "client_error"
SERVER_ERROR: Final = "server_error"
_TABLE: Table = WebhookRejection.__table__  # type: ignore[assignment]


def rejection_reason(status: int) -> str:
    if status in REASONS:
        return REASONS[status]
    return OTHER_CLIENT_ERROR if status < 500 else SERVER_ERROR


def source_of(path: str) -> str:
    """The source label of a `/hooks/<source>` path."""
    name = path.removeprefix("/hooks/").strip("/")
    return name if name in SOURCES else UNKNOWN_SOURCE


def _upsert(is_sqlite: bool) -> Insert:
    dialect_insert = sqlite_insert if is_sqlite else postgresql_insert
    statement = dialect_insert(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=["source", "reason"],
        set_={
            "count": _TABLE.c.count + statement.excluded.count,
            "updated_at": statement.excluded.updated_at,
        },
    )


class RejectionCounter:
    """One per API process: `record` is a dictionary increment; `flush` writes the counts
    gathered since the last flush in one INSERT ... ON CONFLICT DO UPDATE."""

    def __init__(self, database: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.database = database
        self.flush_seconds = flush_seconds
        self._pending: Counter[tuple[str, str]] = Counter()
        self._upsert = _upsert(database.is_sqlite)
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> dict[tuple[str, str], int]:
        return dict(self._pending)

    def record(self, source: str, reason: str) -> None:
        self._pending[(source, reason)] += 1

    async def flush(self) -> int:
        """Add the pending counts to the table; returns how many requests they cover. On a
        database failure the counts stay pending for the next flush."""
        async with self._lock:
            if not self._pending:
                return 0
            taken, self._pending = self._pending, Counter()
            now = datetime.now(UTC)
            rows = [
                {"source": source, "reason": reason, "count": count, "updated_at": now}
                for (source, reason), count in sorted(taken.items())
            ]
            try:
                async with self.database.engine.begin() as connection:
                    # All rows in one statement (one multi-row VALUES), not one per row.
                    await connection.execute(self._upsert.values(rows))
            except Exception as exc:  # noqa: BLE001 - counts are kept and written later
                log.warning("recording %d webhook rejections failed: %r", taken.total(), exc)
                self._pending.update(taken)
                return 0
            return taken.total()

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_periodically())

    async def close(self) -> None:
        """At shutdown: stop the timer and write what is left."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
