"""Admin API for what a new visitor sees first: pinned (featured) posts and the backfill of
the latest posts to new followers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from federation.timestamps import format_timestamp
from service.account_store import AccountStore
from service.backfill import MAX_BACKFILL
from service.db.models import Post
from service.dependencies import AdminDep, RowId, SessionDep
from service.problems import Problem

router = APIRouter(prefix="/api/admin", tags=["admin: featured"], dependencies=[AdminDep])

# Mastodon shows at most five pinned posts on a profile.
MAX_PINNED = 5


class BackfillSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=MAX_BACKFILL, description="Latest posts sent to a new follower.")


async def _post(session: SessionDep, post_id: RowId) -> Post:
    post = await session.get(Post, post_id)
    if post is None:
        raise Problem(404, f"No post {post_id}", type_="unknown-post")
    return post


def _pin_view(post: Post) -> dict[str, Any]:
    return {
        "post_id": post.id,
        "object": post.object_uri,
        "pinned": post.pinned_at is not None,
        "pinned_at": format_timestamp(post.pinned_at) if post.pinned_at else None,
    }


async def pin_post(session: SessionDep, post: Post, now: datetime | None = None) -> Post:
    """Pin a published post (re-pinning moves it to the top of the featured collection)."""
    if post.state != "published":
        raise Problem(409, f"Only published posts can be pinned; this one is {post.state}",
                      type_="post-not-published")  # fmt: skip
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
        raise Problem(409, f"An account can pin at most {MAX_PINNED} posts", type_="too-many-pins")
    post.pinned_at = now or datetime.now(UTC)
    await session.flush()
    return post


@router.post("/posts/{post_id}/pin")
async def pin(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    return _pin_view(await pin_post(session, await _post(session, post_id)))


@router.delete("/posts/{post_id}/pin")
async def unpin(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    post = await _post(session, post_id)
    post.pinned_at = None
    await session.flush()
    return _pin_view(post)


@router.put("/accounts/{handle}/backfill")
async def set_backfill(handle: str, body: BackfillSetting, session: SessionDep) -> dict[str, Any]:
    store = AccountStore(session)
    if await store.find(handle.lower()) is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    account = await store.update(handle.lower(), backfill_count=body.count)
    return {"account": account.handle, "backfill_count": account.backfill_count}
