"""Admin API for what a new visitor sees first: pinned (featured) posts and the backfill of
the latest posts to new followers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from federation.activitypub.timestamps import format_timestamp
from service.accounts.store import AccountStore
from service.community.backfill import MAX_BACKFILL
from service.community.featured_posts import PinRefused, pin_post, unpin_post
from service.db.models import Post
from service.web.dependencies import AdminDep, RowId, SessionDep
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin", tags=["admin: featured"], dependencies=[AdminDep])

# Mastodon shows at most five pinned posts on a profile.


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


@router.post("/posts/{post_id}/pin")
async def pin(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    try:
        post = await pin_post(session, await _post(session, post_id))
    except PinRefused as refused:
        raise Problem(409, refused.reason, type_=refused.slug) from refused
    return _pin_view(post)


@router.delete("/posts/{post_id}/pin")
async def unpin(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    post = await unpin_post(session, await _post(session, post_id))
    return _pin_view(post)


@router.put("/accounts/{handle}/backfill")
async def set_backfill(handle: str, body: BackfillSetting, session: SessionDep) -> dict[str, Any]:
    store = AccountStore(session)
    if await store.find(handle.lower()) is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    account = await store.update(handle.lower(), backfill_count=body.count)
    return {"account": account.handle, "backfill_count": account.backfill_count}
