"""Publishing: record an activity and one delivery per target inbox, in the caller's transaction.

This is the single entry point every producer uses (webhooks, scheduler, inbox replies such as
Accept, account moves). After the transaction commits, call `enqueue_deliveries` so workers
pick the deliveries up at once; if that enqueue is lost, the delivery sweeper finds them anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.audience import delivery_inboxes, inbox_host
from federation.activitypub.urls import InstanceUrls
from service.db.models import Account, Activity, Delivery, Follower, MastodonTarget, Post
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import DELIVER_ACTIVITIES

FOLLOWERS = "followers"


@dataclass(frozen=True, slots=True)
class PublishedActivity:
    activity_row_id: int
    activity_uri: str
    delivery_count: int


def new_activity_uri(urls: InstanceUrls) -> str:
    return urls.activity(str(uuid.uuid4()))


async def follower_inboxes(session: AsyncSession, account_id: int) -> list[str]:
    # Collapsed to one inbox per server in SQL: a server with 100 followers costs the
    # database a little more, not 100 rows shipped to Python.
    target = func.coalesce(func.nullif(Follower.shared_inbox, ""), Follower.inbox)
    rows = await session.execute(
        select(target)
        .where(Follower.account_id == account_id, Follower.state == "accepted")
        .group_by(target)
        .order_by(func.min(Follower.id))
    )
    return delivery_inboxes((inbox, None) for (inbox,) in rows)


@dataclass(frozen=True, slots=True)
class OutgoingActivity:
    """An activity to publish (see `publish_activity` for the fields)."""

    document: dict[str, Any]
    audience: str | Sequence[str] = FOLLOWERS
    post: Post | None = None
    ordering_key: str | None = None
    in_outbox: bool = True
    webhook_event_id: int | None = None
    not_before: datetime | None = None


async def publish_activity(
    session: AsyncSession,
    account: Account,
    document: dict[str, Any],
    *,
    audience: str | Sequence[str] = FOLLOWERS,
    post: Post | None = None,
    ordering_key: str | None = None,
    in_outbox: bool = True,
    webhook_event_id: int | None = None,
    not_before: datetime | None = None,
) -> PublishedActivity:
    """Store `document` (which must carry its `id`) and its deliveries.

    `audience` is FOLLOWERS (every accepted follower, one delivery per shared inbox) or an
    explicit list of inbox URLs (for Accept/Reject to one actor).
    """
    outgoing = OutgoingActivity(
        document, audience, post, ordering_key, in_outbox, webhook_event_id, not_before
    )
    return (await publish_activities(session, account, [outgoing]))[0]


async def publish_activities(
    session: AsyncSession, account: Account, outgoing: Sequence[OutgoingActivity]
) -> list[PublishedActivity]:
    """Store several activities of one account and their deliveries: two statements for
    all of them when each has an explicit audience (the Accepts of a burst of Follows)."""
    if not outgoing:
        return []
    # Set here rather than by the database: SQLite's CURRENT_TIMESTAMP has whole seconds,
    # and delivery latency is measured from this instant.
    created_at = datetime.now(UTC)
    # One cached Core statement with a parameter set per activity: SQLAlchemy renders it as
    # multi-row INSERTs without compiling it again, and nothing needs ORM objects here.
    inserted = await session.execute(
        insert(Activity.__table__).returning(Activity.id, Activity.activity_uri),
        [
            {
                "created_at": created_at,
                "activity_uri": str(item.document["id"]),
                "account_id": account.id,
                "post_id": item.post.id if item.post is not None else None,
                "activity_type": str(item.document.get("type", "")),
                "document": item.document,
                "in_outbox": item.in_outbox,
                "webhook_event_id": item.webhook_event_id,
            }
            for item in outgoing
        ],
    )
    ids_by_uri = {uri: activity_id for activity_id, uri in inserted}
    published: list[PublishedActivity] = []
    rows: list[dict[str, Any]] = []
    for item in outgoing:
        activity_uri = str(item.document["id"])
        activity_id = ids_by_uri[activity_uri]
        item_rows = await _delivery_rows(session, account, item, activity_id, created_at)
        rows.extend(item_rows)
        published.append(PublishedActivity(activity_id, activity_uri, len(item_rows)))
    if rows:
        await session.execute(insert(Delivery.__table__), rows)
    return published


async def _delivery_rows(
    session: AsyncSession,
    account: Account,
    item: OutgoingActivity,
    activity_id: int,
    created_at: datetime,
) -> list[dict[str, Any]]:
    if isinstance(item.audience, str):
        inboxes = await follower_inboxes(session, account.id)
    else:
        inboxes = delivery_inboxes((inbox, None) for inbox in item.audience)
    due = item.not_before or created_at
    rows: list[dict[str, Any]] = [
        {
            "activity_id": activity_id,
            "account_id": account.id,
            "inbox": inbox,
            "host": inbox_host(inbox),
            "ordering_key": item.ordering_key,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": created_at,
            "mastodon_target_id": None,
        }
        for inbox in inboxes
    ]
    if item.post is not None and isinstance(item.audience, str):
        rows.extend(
            await _mastodon_target_rows(
                session, account, activity_id, item.ordering_key, due, created_at
            )
        )
    return rows


async def _mastodon_target_rows(
    session: AsyncSession,
    account: Account,
    activity_id: int,
    ordering_key: str | None,
    due: datetime,
    created_at: datetime,
) -> list[dict[str, Any]]:
    """Posts also go to the account's Mastodon targets (REST API), one delivery each."""
    targets = (
        await session.scalars(
            select(MastodonTarget)
            .where(MastodonTarget.account_id == account.id)
            .order_by(MastodonTarget.id)
        )
    ).all()
    return [
        {
            "activity_id": activity_id,
            "account_id": account.id,
            "inbox": f"{target.instance_url.rstrip('/')}/api/v1/statuses#target-{target.id}",
            "host": inbox_host(target.instance_url),
            "ordering_key": ordering_key,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": created_at,
            "mastodon_target_id": target.id,
        }
        for target in targets
    ]


def fanout_job_id(activity_ids: Sequence[int], reason: str = "") -> str:
    """One id per set of activities (and reason), so the same wake-up is not queued twice."""
    first, last = activity_ids[0], activity_ids[-1]
    span = str(first) if len(activity_ids) == 1 else f"{first}-{last}x{len(activity_ids)}"
    return f"fanout:{span}" + (f":{reason}" if reason else "")


# Activities per delivery job: enough to share claims and commits, few enough that one
# job's statements stay small.
FANOUT_BATCH = 200


async def enqueue_fanout(
    queue: JobQueue,
    activity_ids: Sequence[int],
    *,
    reason: str = "",
    defer_until: datetime | None = None,
) -> int:
    """Queue delivery jobs for these activities, up to FANOUT_BATCH per job: many small ones
    (the Accepts of a burst of Follows) share a job's claims and commits instead of paying a
    job each. Returns how many jobs were queued (a job id already queued counts none)."""
    ids = sorted(set(activity_ids))
    queued = 0
    for start in range(0, len(ids), FANOUT_BATCH):
        chunk = ids[start : start + FANOUT_BATCH]
        if await queue.enqueue(
            DELIVER_ACTIVITIES, chunk, job_id=fanout_job_id(chunk, reason), defer_until=defer_until
        ):
            queued += 1
    return queued


async def enqueue_deliveries(
    queue: JobQueue | None, published: Sequence[PublishedActivity]
) -> None:
    """Wake the workers for freshly committed activities (best effort; sweepers cover losses)."""
    if queue is None:
        return
    await enqueue_fanout(queue, [item.activity_row_id for item in published if item.delivery_count])
