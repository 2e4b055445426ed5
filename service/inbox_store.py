"""Persisting received activities: one statement, idempotent by activity id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from federation.inbox_activities import InboxEnvelope
from service.db.engine import Database
from service.db.models import InboxActivity

PROCESS_TASK = "process_inbox_activity"


def processing_job_id(inbox_activity_id: int) -> str:
    return f"inbox:{inbox_activity_id}"


async def store_inbox_activity(
    database: Database,
    envelope: InboxEnvelope,
    document: dict[str, Any],
    *,
    key_id: str,
    account_id: int | None,
) -> int | None:
    """Insert the activity; return its row id, or None when that id was already received.

    `INSERT ... ON CONFLICT DO NOTHING RETURNING id` is one round trip on both SQLite and
    PostgreSQL, and a repeat delivery can never create a second row.
    """
    dialect_insert = postgresql.insert if not database.is_sqlite else sqlite.insert
    statement = (
        dialect_insert(InboxActivity)
        .values(
            activity_uri=envelope.activity_id,
            account_id=account_id,
            actor_uri=envelope.actor,
            activity_type=envelope.activity_type,
            document=document,
            key_id=key_id[:2048],
            state="received",
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[InboxActivity.activity_uri])
        .returning(InboxActivity.id)
    )
    async with database.engine.begin() as connection:
        inserted = (await connection.execute(statement)).scalar_one_or_none()
    return int(inserted) if inserted is not None else None
