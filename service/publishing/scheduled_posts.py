"""Scheduled posts: durable in the database, published by whichever worker gets there first.

A deferred job normally publishes a post at its time; a sweep catches the posts whose job was
lost with Redis. Both go through `publish_due_post`, whose guarded state transition lets exactly
one caller publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.post_activities import create_activity
from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from service.db.models import Account, Post
from service.publishing.activity_records import PublishedActivity, publish_activity

SWEEP_BATCH = 100


async def due_post_ids(session: AsyncSession, now: datetime, limit: int = SWEEP_BATCH) -> list[int]:
    rows = await session.execute(
        select(Post.id)
        .where(Post.state == "scheduled", Post.scheduled_at <= now)
        .order_by(Post.scheduled_at)
        .limit(limit)
    )
    return list(rows.scalars())


async def publish_due_post(
    session: AsyncSession, urls: InstanceUrls, post_id: int, now: datetime
) -> PublishedActivity | None:
    """Publish the post if it is still scheduled and due; None when someone else did, or when
    it was cancelled or moved later."""
    claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Post)
        .where(Post.id == post_id, Post.state == "scheduled", Post.scheduled_at <= now)
        .values(state="published", published_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    post = await session.get_one(Post, post_id, populate_existing=True)
    account = await session.get_one(Account, post.account_id)
    document = dict(post.document)
    document["published"] = format_timestamp(now)
    post.document = document
    activity = create_activity(urls.activity(str(uuid.uuid4())), document)
    return await publish_activity(
        session,
        account,
        activity,
        post=post,
        ordering_key=post.object_uri,
        webhook_event_id=post.webhook_event_id,
    )


async def cancel_scheduled(session: AsyncSession, post_ids: Sequence[int]) -> int:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Post)
        .where(Post.id.in_(post_ids), Post.state == "scheduled")
        .values(state="cancelled")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


async def reschedule(session: AsyncSession, post_id: int, due: datetime) -> bool:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Post)
        .where(Post.id == post_id, Post.state == "scheduled")
        .values(scheduled_at=due)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
