"""Turning a stored webhook delivery into posts (run by workers, from the database row).

The first statement of the processing transaction moves the row out of `received`; only the
caller whose update matched goes on, so two workers (or a job and the sweeper) never publish
one delivery twice. A crash rolls that back and the sweeper tries again.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult

from federation.forge_events import FORGEJO, GITHUB, parse_forge_event
from federation.ghost_events import GHOST, parse_ghost_event
from federation.source_events import IgnoredEvent, ParsedWebhook, PayloadError
from federation.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import WebhookEvent
from service.job_queue import JobQueue
from service.post_publisher import PostPublisher, PublishOutcome, announce
from service.settings import Settings
from service.webhook_intake import enqueue_processing
from service.webhook_schemas import CmsEvent, cms_source_event

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=10)
SWEEP_BATCH = 200


def parse_stored(source: str, event_type: str, body: bytes, settings: Settings) -> ParsedWebhook:
    if source == "cms":
        return [cms_source_event(CmsEvent.model_validate_json(body))]
    payload = json.loads(body)
    if source == GHOST:
        return parse_ghost_event(payload)
    if source in (FORGEJO, GITHUB):
        return parse_forge_event(source, event_type, payload, settings.star_milestone_list)
    return IgnoredEvent(f"unknown source {source}")


async def process_webhook_event(
    database: Database,
    queue: JobQueue | None,
    urls: InstanceUrls,
    settings: Settings,
    event_id: int,
) -> dict[str, Any] | None:
    """Process one delivery if nobody has; returns its result, or None if it was not ours."""
    now = datetime.now(UTC)
    outcome = PublishOutcome()
    try:
        async with database.transaction() as session:
            claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
                update(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.state == "received")
                .values(state="processed", processed_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
            row = await session.get_one(WebhookEvent, event_id)
            parsed = parse_stored(row.source, row.event_type, row.body, settings)
            if isinstance(parsed, IgnoredEvent):
                row.state, row.result = "ignored", {"reason": parsed.reason}
                return row.result
            publisher = PostPublisher(session, urls, now=now, webhook_event_id=event_id)
            for event in parsed:
                outcome.extend(await publisher.apply(event))
            row.result = outcome.summary()
            result = row.result
    except (ValidationError, PayloadError, ValueError) as exc:
        await _mark_failed(database, event_id, f"payload no longer parses: {exc}")
        return {"error": str(exc)}
    await announce(queue, outcome)
    return result


async def _mark_failed(database: Database, event_id: int, error: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.state == "received")
            .values(state="failed", error=error[:2000], processed_at=datetime.now(UTC))
        )


async def requeue_stale_events(database: Database, queue: JobQueue | None) -> int:
    """Enqueue again every delivery still `received` a while after it arrived (its job was
    lost with Redis, or the worker died mid-way)."""
    cutoff = datetime.now(UTC) - STALE_AFTER
    async with database.session() as session:
        rows = await session.execute(
            select(WebhookEvent.id)
            .where(WebhookEvent.state == "received", WebhookEvent.received_at <= cutoff)
            .order_by(WebhookEvent.id)
            .limit(SWEEP_BATCH)
        )
        event_ids = list(rows.scalars())
    await enqueue_processing(queue, event_ids)
    return len(event_ids)
