"""Answering follow requests: Accept (at once, or when an admin approves) or Reject."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.follow_answers import FollowAnswer, follow_answer
from federation.activitypub.urls import InstanceUrls
from service.community.backfill import follow_ordering_key
from service.db.models import Account, Follower
from service.publishing.activity_records import (
    OutgoingActivity,
    PublishedActivity,
    new_activity_uri,
    publish_activities,
)


async def answer_follow(
    session: AsyncSession,
    account: Account,
    follower: Follower,
    kind: FollowAnswer,
    urls: InstanceUrls,
) -> PublishedActivity:
    return (await answer_follows(session, account, [follower], kind, urls))[0]


async def answer_follows(
    session: AsyncSession,
    account: Account,
    followers: Sequence[Follower],
    kind: FollowAnswer,
    urls: InstanceUrls,
) -> list[PublishedActivity]:
    """Store the answers and their one delivery each, to the follower's own inbox (not the
    shared one: an Accept concerns that actor only). They stay out of the public outbox."""
    followed = urls.account(account.handle).actor
    answers = [
        OutgoingActivity(
            follow_answer(
                kind,
                new_activity_uri(urls),
                followed=followed,
                follower=follower.actor_uri,
                follow_id=follower.follow_activity_id,
            ),
            audience=[follower.inbox],
            ordering_key=follow_ordering_key(follower.actor_uri),
            in_outbox=False,
        )
        for follower in followers
    ]
    return await publish_activities(session, account, answers)
