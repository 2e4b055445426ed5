"""Pinning posts into an account's `featured` collection (what Mastodon shows on top of the
profile). One implementation for the admin API and the CMS webhook's `pinned` flag."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Post

MAX_PINNED = 5


class PinRefused(Exception):
    def __init__(self, reason: str, slug: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.slug = slug


async def pin_post(session: AsyncSession, post: Post, now: datetime | None = None) -> Post:
    """Pin a published post (re-pinning moves it to the top of the featured collection)."""
    if post.state != "published":
        raise PinRefused(
            f"Only published posts can be pinned; this one is {post.state}", "post-not-published"
        )
    pinned = int(
        await session.scalar(
            select(func.count()).where(
                Post.account_id == post.account_id,
                Post.pinned_at.is_not(None),
                Post.state == "published",
                Post.id != post.id,
            )
        )
        or 0
    )
    if pinned >= MAX_PINNED:
        raise PinRefused(f"An account can pin at most {MAX_PINNED} posts", "too-many-pins")
    post.pinned_at = now or datetime.now(UTC)
    await session.flush()
    return post


async def unpin_post(session: AsyncSession, post: Post) -> Post:
    post.pinned_at = None
    await session.flush()
    return post
