"""Admin API for posts: publish now or later on several accounts, list, show, reschedule, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Account, Post
from service.publishing.post_lifecycle import PostPublisher, PublishOutcome, announce
from service.publishing.preview import preview_events
from service.publishing.scheduled_posts import cancel_scheduled, reschedule
from service.publishing.targets import target_accounts
from service.web.dependencies import (
    MAX_ROW_ID,
    AdminDep,
    DatabaseDep,
    QueueDep,
    RowId,
    SessionDep,
    UrlsDep,
)
from service.web.problems import Problem
from service.webhooks.schemas import PostRequest, source_event_of

router = APIRouter(prefix="/api/admin/posts", tags=["admin: posts"], dependencies=[AdminDep])

PostState = Literal["scheduled", "published", "cancelled", "deleted"]


class AdminPostRequest(PostRequest):
    accounts: list[str] = Field(
        min_length=1, max_length=50, description="Handles to publish on.", examples=[["blog"]]
    )


class PostView(BaseModel):
    id: int
    account: str
    object_id: str
    object_type: str
    source: str
    source_id: str
    state: str
    url: str | None
    scheduled_at: datetime | None
    published_at: datetime | None
    edited_at: datetime | None
    deleted_at: datetime | None
    created_at: datetime
    document: dict[str, Any] | None = None

    @classmethod
    def of(cls, post: Post, handle: str, *, with_document: bool = False) -> PostView:
        return cls(
            id=post.id,
            account=handle,
            object_id=post.object_uri,
            object_type=post.object_type,
            source=post.source,
            source_id=post.source_id,
            state=post.state,
            url=post.canonical_url,
            scheduled_at=post.scheduled_at,
            published_at=post.published_at,
            edited_at=post.edited_at,
            deleted_at=post.deleted_at,
            created_at=post.created_at,
            document=post.document if with_document else None,
        )


class PublishAnswer(BaseModel):
    source_id: str
    accounts: list[dict[str, Any]] = Field(
        description="Per account: status (published, scheduled, ...), post_id, object, activity."
    )


class Reschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_at: AwareDatetime


@router.post("", status_code=201, response_model=PublishAnswer)
async def publish_post(
    body: AdminPostRequest, database: DatabaseDep, queue: QueueDep, urls: UrlsDep
) -> Any:
    """Publish a post on the listed accounts, now or at `scheduled_at`. With `dry_run`, answer
    with the preview instead (200)."""
    event = source_event_of(body, source="api", action="published", source_id=body.source_id)
    async with database.transaction() as session:
        targets = await target_accounts(session, event)
        if targets.unknown_handles:
            raise Problem(
                422,
                f"Unknown accounts: {', '.join(targets.unknown_handles)}",
                type_="validation-error",
                title="Invalid request",
                errors=[
                    {"name": "accounts", "reason": f"no account '{handle}'"}
                    for handle in targets.unknown_handles
                ],
            )
        if body.dry_run:
            previews = await preview_events(session, urls, [event])
            return JSONResponse({"status": "dry_run", "previews": previews}, status_code=200)
        outcome = PublishOutcome()
        publisher = PostPublisher(session, urls)
        for account in targets.accounts:
            outcome.extend(await publisher.apply_to(event, account))
    await announce(queue, outcome)
    return PublishAnswer(source_id=event.source_id, accounts=outcome.accounts)


async def _views(session: AsyncSession, query: Any) -> list[PostView]:
    rows = await session.execute(query)
    return [PostView.of(post, handle) for post, handle in rows.all()]


@router.get("", response_model=list[PostView])
async def list_posts(
    session: SessionDep,
    state: PostState | None = None,
    account: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    before_id: int | None = Query(
        None, ge=1, le=MAX_ROW_ID, description="Page: posts with a smaller id."
    ),
) -> list[PostView]:
    query = select(Post, Account.handle).join(Account, Account.id == Post.account_id)
    if state:
        query = query.where(Post.state == state)
    if account:
        query = query.where(Account.handle == account)
    if before_id:
        query = query.where(Post.id < before_id)
    return await _views(session, query.order_by(Post.id.desc()).limit(limit))


@router.get("/scheduled", response_model=list[PostView])
async def list_scheduled(
    session: SessionDep, limit: int = Query(100, ge=1, le=1000)
) -> list[PostView]:
    query = (
        select(Post, Account.handle)
        .join(Account, Account.id == Post.account_id)
        .where(Post.state == "scheduled")
        .order_by(Post.scheduled_at, Post.id)
        .limit(limit)
    )
    return await _views(session, query)


async def _load(session: AsyncSession, post_id: RowId) -> tuple[Post, str]:
    row = (
        await session.execute(
            select(Post, Account.handle)
            .join(Account, Account.id == Post.account_id)
            .where(Post.id == post_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise Problem(404, f"No post {post_id}", type_="unknown-post")
    return row[0], row[1]


@router.get("/{post_id}", response_model=PostView)
async def show_post(post_id: RowId, session: SessionDep) -> PostView:
    post, handle = await _load(session, post_id)
    return PostView.of(post, handle, with_document=True)


def _not_scheduled(post: Post) -> Problem:
    return Problem(
        409, f"Post {post.id} is {post.state}, not scheduled", type_="post-not-scheduled"
    )


@router.patch("/{post_id}/schedule", response_model=PostView)
async def reschedule_post(
    post_id: RowId, body: Reschedule, database: DatabaseDep, queue: QueueDep
) -> PostView:
    """Move a scheduled post to another time (a time in the past publishes it at once)."""
    async with database.transaction() as session:
        post, handle = await _load(session, post_id)
        if not await reschedule(session, post_id, body.scheduled_at):
            raise _not_scheduled(post)
        post, handle = await _load(session, post_id)
    due = max(body.scheduled_at, datetime.now(UTC))
    outcome = PublishOutcome(scheduled=[(post_id, due)])
    await announce(queue, outcome)
    return PostView.of(post, handle)


@router.post("/{post_id}/cancel", response_model=PostView)
async def cancel_post(post_id: RowId, database: DatabaseDep) -> PostView:
    """Cancel a scheduled post; it will never be published."""
    async with database.transaction() as session:
        post, handle = await _load(session, post_id)
        if await cancel_scheduled(session, [post_id]) != 1:
            raise _not_scheduled(post)
        post, handle = await _load(session, post_id)
    return PostView.of(post, handle)
