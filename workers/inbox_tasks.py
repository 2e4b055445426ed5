"""Worker tasks for received activities, and the crons around them.

* `process_inbox_activities(ids)`: apply a batch the inbox stored together;
  `process_inbox_activity(id)` one activity (the sweeper's unit).
* `sweep_received_inbox` (every minute): enqueue activities still `received` after a
  while, e.g. because Redis was down when they arrived.
* `take_follower_snapshots` (daily, and at worker start): one FollowerSnapshot per
  account per UTC day.
* `prune_inbox_activities` (daily): drop finished activities older than the retention.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from arq.cron import cron
from sqlalchemy import delete, func, select

from service.accounts.instance_actor import instance_signer
from service.db.engine import Database
from service.db.models import Account, Follower, FollowerSnapshot, InboxActivity
from service.inbox.processing import InboxProcessor
from service.inbox.store import processing_job_id
from service.remote.actors import upsert_statement
from service.remote.documents import RemoteDocumentFetcher
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import PROCESS_INBOX_ACTIVITIES, PROCESS_INBOX_ACTIVITY
from workers.context import context_of
from workers.task_functions import TaskFunction

# How long a received activity may wait for its job before the sweeper enqueues it again.
SWEEP_AFTER = timedelta(seconds=20)
SWEEP_BATCH = 1000
# Activities one processing job applies at most, its own batch included.
MERGE_LIMIT = 200
_PROCESSOR = "inbox_processor"
_FETCHER = "inbox_fetcher"


async def STARTUP(ctx: dict[str, Any]) -> None:  # noqa: N802 - name fixed by workers.worker
    worker = context_of(ctx)
    signer = await instance_signer(worker["database"], worker["urls"])
    fetcher = RemoteDocumentFetcher.from_settings(worker["settings"], signer=signer)

    async def fetch(url: str) -> dict[str, Any]:
        return (await fetcher.fetch(url)).document

    worker["resources"][_FETCHER] = fetcher
    worker["resources"][_PROCESSOR] = InboxProcessor(worker["database"], worker["urls"], fetch)


async def SHUTDOWN(ctx: dict[str, Any]) -> None:  # noqa: N802 - name fixed by workers.worker
    fetcher: RemoteDocumentFetcher | None = context_of(ctx)["resources"].pop(_FETCHER, None)
    if fetcher is not None:
        await fetcher.aclose()


async def process_inbox_activity(ctx: dict[str, Any], inbox_activity_id: int) -> str | None:
    worker = context_of(ctx)
    processor: InboxProcessor = worker["resources"][_PROCESSOR]
    return await processor.process(inbox_activity_id, worker["queue"])


async def process_inbox_activities(
    ctx: dict[str, Any], inbox_activity_ids: list[int]
) -> dict[str, int]:
    """A batch stored together by the inbox, and whatever else has arrived meanwhile."""
    worker = context_of(ctx)
    processor: InboxProcessor = worker["resources"][_PROCESSOR]
    ids = [int(i) for i in inbox_activity_ids]
    ids.extend(await waiting_received(worker["database"], ids, MERGE_LIMIT - len(ids)))
    outcomes: dict[str, int] = {}
    states = await processor.process_many(sorted(ids), worker["queue"])
    for state in states:
        outcomes[state or "skipped"] = outcomes.get(state or "skipped", 0) + 1
    return outcomes


async def waiting_received(database: Database, taken: list[int], limit: int) -> list[int]:
    """Up to `limit` other received activities, oldest first.

    Under load the inbox stores requests a few at a time, each batch with its job; a job
    that takes along what has arrived since makes the transactions and the Accepts' delivery
    job large where they would be many and small. The jobs of the activities taken along
    then find nothing left to claim."""
    if limit <= 0:
        return []
    async with database.session() as session:
        rows = await session.execute(
            select(InboxActivity.id)
            .where(InboxActivity.state == "received", InboxActivity.id.not_in(taken))
            .order_by(InboxActivity.id)
            .limit(limit)
        )
        return list(rows.scalars())


async def sweep_received_inbox(ctx: dict[str, Any]) -> int:
    worker = context_of(ctx)
    return await enqueue_received(worker["database"], worker["queue"])


async def enqueue_received(
    database: Database, queue: JobQueue, *, older_than: timedelta = SWEEP_AFTER
) -> int:
    cutoff = datetime.now(UTC) - older_than
    async with database.session() as session:
        ids = (
            await session.execute(
                select(InboxActivity.id)
                .where(InboxActivity.state == "received", InboxActivity.received_at <= cutoff)
                .order_by(InboxActivity.id)
                .limit(SWEEP_BATCH)
            )
        ).scalars()
        pending = list(ids)
    enqueued = 0
    for row_id in pending:
        if await queue.enqueue(PROCESS_INBOX_ACTIVITY, row_id, job_id=processing_job_id(row_id)):
            enqueued += 1
    return enqueued


async def take_follower_snapshots(ctx: dict[str, Any]) -> int:
    return await snapshot_followers(context_of(ctx)["database"])


async def snapshot_followers(database: Database, day: date | None = None) -> int:
    """Record today's accepted-follower count of every account (re-running a day
    overwrites that day's figure)."""
    day = day or datetime.now(UTC).date()
    async with database.transaction() as session:
        counts = (
            await session.execute(
                select(Account.id, func.count(Follower.id))
                .outerjoin(
                    Follower,
                    (Follower.account_id == Account.id) & (Follower.state == "accepted"),
                )
                .group_by(Account.id)
            )
        ).all()
        rows = [
            {"account_id": account_id, "day": day, "followers": int(count)}
            for account_id, count in counts
        ]
        if rows:
            statement = upsert_statement(session, FollowerSnapshot).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=[FollowerSnapshot.account_id, FollowerSnapshot.day],
                set_={"followers": statement.excluded.followers},
            )
            await session.execute(statement)
    return len(rows)


async def prune_inbox_activities(ctx: dict[str, Any]) -> int:
    worker = context_of(ctx)
    days = worker["settings"].inbox_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    async with worker["database"].transaction() as session:
        result = await session.execute(
            delete(InboxActivity).where(
                InboxActivity.state != "received", InboxActivity.received_at < cutoff
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


TASKS = [
    TaskFunction(PROCESS_INBOX_ACTIVITY, process_inbox_activity),
    TaskFunction(PROCESS_INBOX_ACTIVITIES, process_inbox_activities),
]
CRON_JOBS = [
    cron(sweep_received_inbox, second={13}, run_at_startup=True),
    cron(take_follower_snapshots, hour={0}, minute={5}, second={0}, run_at_startup=True),
    cron(prune_inbox_activities, hour={3}, minute={17}, second={0}),
]
