"""Worker tasks for scheduled posts: the deferred job at a post's time, and a sweep that
publishes due posts whose job was lost (Redis flushed or restarted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arq.cron import cron

from service.db.engine import Database
from service.publishing.activity_records import enqueue_deliveries
from service.publishing.scheduled_posts import due_post_ids, publish_due_post
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import PUBLISH_SCHEDULED_POST
from workers.context import context_of
from workers.task_functions import TaskFunction


async def _publish(database: Database, queue: JobQueue, urls: Any, post_id: int) -> bool:
    async with database.transaction() as session:
        published = await publish_due_post(session, urls, post_id, datetime.now(UTC))
    if published is None:
        return False
    await enqueue_deliveries(queue, [published])
    return True


async def publish_scheduled_post(ctx: dict[str, Any], post_id: int) -> bool:
    worker = context_of(ctx)
    return await _publish(worker["database"], worker["queue"], worker["urls"], post_id)


async def sweep_due_posts(ctx: dict[str, Any]) -> int:
    worker = context_of(ctx)
    database = worker["database"]
    async with database.session() as session:
        post_ids = await due_post_ids(session, datetime.now(UTC))
    published = 0
    for post_id in post_ids:
        published += await _publish(database, worker["queue"], worker["urls"], post_id)
    return published


TASKS = [TaskFunction(PUBLISH_SCHEDULED_POST, publish_scheduled_post)]
CRON_JOBS = [cron(sweep_due_posts, second=set(range(0, 60, 3)), run_at_startup=True, unique=True)]
