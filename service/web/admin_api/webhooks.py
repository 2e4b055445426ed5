"""Admin API for stored webhook events: retry failed ones (one, a source's, or all).

Listing them is read-only and lives in the monitoring API (`/api/admin/monitoring/webhooks`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from service.db.models import WebhookEvent
from service.web.dependencies import AdminDep, DatabaseDep, QueueDep, RowId
from service.web.problems import Problem
from service.webhooks.intake import enqueue_processing
from service.webhooks.manual_retries import RETRYABLE_STATES, WebhookSelection, retry_webhook_events

router = APIRouter(prefix="/api/admin/webhooks", tags=["admin: webhooks"], dependencies=[AdminDep])


class BulkWebhookSelection(BaseModel):
    """Exactly one of: `source` (its failed events) or `all: true` (every failed event)."""

    source: str | None = Field(None, min_length=1, max_length=32)
    all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> BulkWebhookSelection:
        if (self.source is None) == (not self.all):
            raise ValueError("give either source or all=true")
        return self

    def selection(self) -> WebhookSelection:
        return WebhookSelection(source=self.source, all_failed=self.all)


@router.post("/{event_id}/retry", summary="Process one stored webhook event again from scratch")
async def retry_one(event_id: RowId, database: DatabaseDep, queue: QueueDep) -> dict[str, Any]:
    async with database.transaction() as session:
        event = await session.get(WebhookEvent, event_id)
        if event is None:
            raise Problem(404, f"no webhook event {event_id}", type_="not-found")
        if event.state not in RETRYABLE_STATES:
            raise Problem(
                409, f"webhook event is {event.state}", type_="webhook-state", state=event.state
            )
        retried = await retry_webhook_events(session, WebhookSelection(event_ids=[event_id]))
    await enqueue_processing(queue, retried)
    return {"retried": len(retried)}


@router.post("/retry", summary="Process a source's failed webhook events, or all, again")
async def retry_many(
    body: BulkWebhookSelection, database: DatabaseDep, queue: QueueDep
) -> dict[str, Any]:
    async with database.transaction() as session:
        retried = await retry_webhook_events(session, body.selection())
    await enqueue_processing(queue, retried)
    return {"retried": len(retried)}
