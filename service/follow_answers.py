"""Answering follow requests: Accept (at once, or when an admin approves) or Reject."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from federation.follow_answers import FollowAnswer, follow_answer
from federation.urls import InstanceUrls
from service.db.models import Account, Follower
from service.publishing import PublishedActivity, new_activity_uri, publish_activity


async def answer_follow(
    session: AsyncSession,
    account: Account,
    follower: Follower,
    kind: FollowAnswer,
    urls: InstanceUrls,
) -> PublishedActivity:
    """Store the answer and its one delivery, to the follower's own inbox (not the shared
    one: an Accept concerns that actor only). It stays out of the public outbox."""
    document = follow_answer(
        kind,
        new_activity_uri(urls),
        followed=urls.account(account.handle).actor,
        follower=follower.actor_uri,
        follow_id=follower.follow_activity_id,
    )
    return await publish_activity(
        session,
        account,
        document,
        audience=[follower.inbox],
        ordering_key=f"follow:{follower.actor_uri}",
        in_outbox=False,
    )
