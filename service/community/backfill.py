"""A first look for new followers: the latest posts, sent right after their follow is accepted.

Mastodon shows a remote profile's older posts only if it has received them, so someone who
just followed an account sees an empty profile until the next post. With
`Account.backfill_count > 0` the newest posts' `Create` activities go to the new follower's
own inbox. They share the Accept's ordering key, so the delivery engine hands them over only
after the Accept: a server drops posts of an account it does not (yet) follow.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.post_activities import create_activity
from federation.activitypub.urls import InstanceUrls
from service.db.models import Account, Follower, Post
from service.publishing.activity_records import (
    PublishedActivity,
    new_activity_uri,
    publish_activity,
)

MAX_BACKFILL = 20


def follow_ordering_key(actor_uri: str) -> str:
    """The ordering key of everything sent to one follower about its follow."""
    return f"follow:{actor_uri}"


async def backfill_new_follower(
    session: AsyncSession, account: Account, follower: Follower, urls: InstanceUrls
) -> list[PublishedActivity]:
    """Queue the account's newest published posts for one freshly accepted follower
    (nothing when backfill is off). Enqueue the result after the transaction commits."""
    count = min(max(account.backfill_count or 0, 0), MAX_BACKFILL)
    if count == 0 or follower.state != "accepted":
        return []
    posts = list(
        (
            await session.execute(
                select(Post)
                .where(Post.account_id == account.id, Post.state == "published")
                .order_by(Post.published_at.desc(), Post.id.desc())
                .limit(count)
            )
        ).scalars()
    )
    published = []
    # Oldest first, so the follower's timeline gets them in the order they were written.
    for post in reversed(posts):
        published.append(
            await publish_activity(
                session,
                account,
                create_activity(new_activity_uri(urls), post.document),
                audience=[follower.inbox],
                post=post,
                ordering_key=follow_ordering_key(follower.actor_uri),
                in_outbox=False,
            )
        )
    return published
