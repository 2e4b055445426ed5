"""Worker tasks for webhooks: process a stored delivery; sweep up deliveries whose job was lost."""

from __future__ import annotations

from typing import Any

from arq.cron import cron

from service.publishing.webhook_events import process_webhook_event as process_stored_event
from service.publishing.webhook_events import requeue_stale_events
from service.runtime.structured_logs import log_context
from service.runtime.tasks import PROCESS_WEBHOOK_EVENTS
from workers.context import context_of
from workers.task_functions import TaskFunction


async def process_webhook_events(ctx: dict[str, Any], event_ids: list[int]) -> int:
    """Process stored deliveries in arrival order; returns how many this job processed."""
    worker = context_of(ctx)
    processed = 0
    for event_id in event_ids:
        with log_context(webhook_event_id=event_id):
            result = await process_stored_event(
                worker["database"], worker["queue"], worker["urls"], worker["settings"], event_id
            )
        processed += result is not None
    return processed


async def sweep_received_webhooks(ctx: dict[str, Any]) -> int:
    worker = context_of(ctx)
    return await requeue_stale_events(worker["database"], worker["queue"])


TASKS = [TaskFunction(PROCESS_WEBHOOK_EVENTS, process_webhook_events)]
CRON_JOBS = [
    cron(sweep_received_webhooks, second={0, 15, 30, 45}, run_at_startup=True, unique=True)
]
