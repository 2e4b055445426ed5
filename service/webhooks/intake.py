"""The request path of every webhook: persist the raw delivery once, then hand it to a worker.

One statement stores the delivery (a conflict on (source, delivery key) means it was seen
before), batched with concurrent ones; rendering and publishing happen in the worker, so the
answer is fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from service.db.engine import Database
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import PROCESS_WEBHOOK_EVENTS
from service.web.problems import Problem
from service.webhooks.group_commit import PendingDelivery, StoredDelivery, WebhookEventWriter
from service.webhooks.sources import WEBHOOK_SOURCES

# How long a sender should wait before redelivering when the database is unavailable.
RETRY_AFTER_SECONDS = 30
# Headers worth keeping with the raw body; signatures are not among them.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    *(name for source in WEBHOOK_SOURCES.values() for name in source.recorded_headers),
)


_KEPT_RAW = frozenset(name.encode("latin-1") for name in KEPT_HEADERS)


def kept_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The kept headers from the ASGI header list (lower-case names), in one pass; the first
    of repeated headers wins, as with Starlette's `Headers`."""
    kept: dict[str, str] = {}
    for name, value in raw_headers:
        if name in _KEPT_RAW:
            kept.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return kept


def webhook_writer(state: Any, database: Database) -> WebhookEventWriter:
    """The application's one writer (created on first use, bound to its database)."""
    writer: WebhookEventWriter | None = getattr(state, "webhook_writer", None)
    if writer is None or writer.database is not database:

        async def wake_workers(event_ids: list[int]) -> None:
            await enqueue_processing(getattr(state, "queue", None), event_ids)

        writer = WebhookEventWriter(database, wake_workers)
        state.webhook_writer = writer
    return writer


async def close_webhook_writer(state: Any) -> None:
    """At shutdown: finish the batches under way and release the writer's connection."""
    writer: WebhookEventWriter | None = getattr(state, "webhook_writer", None)
    if writer is not None:
        state.webhook_writer = None
        await writer.close()


async def store_webhook_event(
    state: Any,
    database: Database,
    *,
    source: str,
    key: str,
    event_type: str,
    headers: dict[str, str],
    body: bytes,
) -> StoredDelivery:
    """Store the delivery, or answer 503 when the database cannot take it (the sender
    redelivers later; nothing was accepted, so nothing is lost)."""
    delivery = PendingDelivery(source, key, event_type, headers, body)
    try:
        return await webhook_writer(state, database).store(delivery)
    except (SQLAlchemyError, OSError) as exc:
        # OSError: a refused connection while the server restarts surfaces unwrapped.
        # The writer has logged the failure once for its whole batch.
        raise Problem(
            503,
            "The webhook could not be stored; retry later",
            type_="database-unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from exc


async def enqueue_processing(queue: JobQueue | None, event_ids: list[int]) -> None:
    """One job for a batch of stored deliveries (processing each is idempotent)."""
    if queue is not None and event_ids:
        job_id = f"webhooks:{event_ids[0]}-{event_ids[-1]}:{len(event_ids)}"
        await queue.enqueue(PROCESS_WEBHOOK_EVENTS, event_ids, job_id=job_id)
