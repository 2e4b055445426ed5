"""Turning a stored webhook delivery into posts (run by workers, from the database row).

The first statement of the processing transaction moves the row out of `received`; only the
caller whose update matched goes on, so two workers (or a job and the sweeper) never publish
one delivery twice. A crash rolls that back and the sweeper tries again.

A payload that no longer parses fails for good at once. Any other error (a database hiccup, a
bug met by one event) is retried on the delivery retry curve (`RetrySchedule`: 16 s, 31 s,
96 s, ...) up to `webhook_max_retries` times; then the event is marked `failed` with its last
error, kept, and waits for an operator to retry it (service.webhooks.manual_retries).
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.engine import CursorResult

from federation.activitypub.urls import InstanceUrls
from federation.peers.retry_schedule import RetrySchedule
from federation.sources.events import IgnoredEvent, PayloadError
from service.db.engine import Database
from service.db.models import WebhookEvent
from service.publishing.post_lifecycle import PostPublisher, PublishOutcome, announce
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings
from service.webhooks.intake import enqueue_processing
from service.webhooks.sources import interpret_stored

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=10)
SWEEP_BATCH = 200


def retry_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(max_retries=settings.webhook_max_retries)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now)


async def process_webhook_event(
    database: Database,
    queue: JobQueue | None,
    urls: InstanceUrls,
    settings: Settings,
    event_id: int,
    *,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Process one delivery if nobody has and it is due; returns its result, or None if it
    was not ours (or failed, to be retried later)."""
    now = now or datetime.now(UTC)
    outcome = PublishOutcome()
    try:
        async with database.transaction() as session:
            claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
                update(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.state == "received", _due(now))
                .values(state="processed", processed_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
            row = await session.get_one(WebhookEvent, event_id)
            parsed = interpret_stored(row.source, row.event_type, row.body, settings)
            if isinstance(parsed, IgnoredEvent):
                row.state, row.result = "ignored", {"reason": parsed.reason}
                return row.result
            publisher = PostPublisher(session, urls, now=now, webhook_event_id=event_id)
            for event in parsed:
                outcome.extend(await publisher.apply(event))
            row.result = outcome.summary()
            result = row.result
    except (ValidationError, PayloadError, ValueError) as exc:
        await _record_failure(
            database, event_id, f"payload no longer parses: {exc}", retry_in=None, now=now
        )
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any other failure is retried, then kept as failed
        log.warning("processing webhook event %d failed: %r", event_id, exc)
        await _record_retryable_failure(database, settings, event_id, repr(exc), now)
        return None
    await announce(queue, outcome)
    return result


async def _record_retryable_failure(
    database: Database, settings: Settings, event_id: int, error: str, now: datetime
) -> None:
    async with database.session() as session:
        attempts = await session.scalar(
            select(WebhookEvent.attempts).where(WebhookEvent.id == event_id)
        )
    if attempts is None:
        return
    # `attempts` failures so far; this one is failure attempts + 1, to be followed by retry
    # number attempts + 1 if the schedule has one left.
    delay = retry_schedule(settings).next_delay(attempts + 1, random.random())  # noqa: S311
    retry_in = None if delay is None else timedelta(seconds=delay)
    await _record_failure(database, event_id, error, retry_in=retry_in, now=now)


async def _record_failure(
    database: Database,
    event_id: int,
    error: str,
    *,
    retry_in: timedelta | None,
    now: datetime,
) -> None:
    """Count a failed attempt: due again after `retry_in`, or `failed` for good when None."""
    if retry_in is None:
        changes: dict[str, Any] = {"state": "failed", "processed_at": now}
    else:
        changes = {"next_attempt_at": now + retry_in}
    async with database.transaction() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.state == "received")
            .values(attempts=WebhookEvent.attempts + 1, error=error[:2000], **changes)
            .execution_options(synchronize_session=False)
        )


async def requeue_stale_events(
    database: Database, queue: JobQueue | None, now: datetime | None = None
) -> int:
    """Enqueue again every delivery still `received` a while after it arrived (its job was
    lost with Redis, or the worker died mid-way) whose retry, if it failed, is due."""
    now = now or datetime.now(UTC)
    cutoff = now - STALE_AFTER
    async with database.session() as session:
        rows = await session.execute(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.state == "received",
                WebhookEvent.received_at <= cutoff,
                _due(now),
            )
            .order_by(WebhookEvent.id)
            .limit(SWEEP_BATCH)
        )
        event_ids = list(rows.scalars())
    await enqueue_processing(queue, event_ids)
    return len(event_ids)
