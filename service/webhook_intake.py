"""The request path of every webhook: persist the raw delivery once, then hand it to a worker.

One statement stores the delivery (a conflict on (source, delivery key) means it was seen
before); rendering and publishing happen in the worker, so the answer is fast.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.db.engine import Database
from service.db.models import WebhookEvent
from service.job_queue import JobQueue
from service.problems import Problem

PROCESS_WEBHOOK_TASK = "process_webhook_event"
_MAX_DELIVERY_KEY = 200
# Headers worth keeping with the raw body; signatures are not among them.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-forgejo-event",
    "x-forgejo-delivery",
    "x-gitea-event",
    "x-gitea-delivery",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
)


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    event_id: int
    duplicate: bool
    state: str
    result: dict[str, Any] | None


def body_digest_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def delivery_key(presented: str | None, body: bytes) -> str:
    """The delivery's id as the sender gave it, or a digest of the body when it gave none."""
    value = (presented or "").strip()
    if not value or len(value) > _MAX_DELIVERY_KEY:
        return body_digest_key(body if not value else value.encode())
    return value


def parse_json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "Body is not valid JSON", type_="malformed-json") from exc


def kept_headers(headers: Any) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


async def store_webhook_event(
    database: Database,
    *,
    source: str,
    key: str,
    event_type: str,
    headers: dict[str, str],
    body: bytes,
) -> StoredDelivery:
    insert = sqlite_insert if database.is_sqlite else postgresql_insert
    statement = (
        insert(WebhookEvent)
        .values(
            source=source,
            delivery_key=key,
            event_type=event_type[:64],
            headers=headers,
            body=body,
            state="received",
        )
        .on_conflict_do_nothing(index_elements=["source", "delivery_key"])
        .returning(WebhookEvent.id)
    )
    async with database.engine.begin() as connection:
        new_id = (await connection.execute(statement)).scalar_one_or_none()
        if new_id is not None:
            return StoredDelivery(int(new_id), False, "received", None)
        earlier = (
            await connection.execute(
                select(WebhookEvent.id, WebhookEvent.state, WebhookEvent.result).where(
                    WebhookEvent.source == source, WebhookEvent.delivery_key == key
                )
            )
        ).one()
    return StoredDelivery(int(earlier.id), True, str(earlier.state), earlier.result)


async def enqueue_processing(queue: JobQueue | None, event_id: int) -> None:
    if queue is not None:
        await queue.enqueue(PROCESS_WEBHOOK_TASK, event_id, job_id=f"webhook:{event_id}")
