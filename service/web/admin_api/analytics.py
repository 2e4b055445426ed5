"""Admin API for reach and interaction analytics, as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from service.accounts.store import AccountStore
from service.db.models import Account, Post
from service.reporting.analytics import (
    account_analytics,
    account_posts_analytics,
    days_csv,
    post_analytics,
    posts_csv,
)
from service.web.dependencies import AdminDep, RowId, SessionDep
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin", tags=["admin: analytics"], dependencies=[AdminDep])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
Days = Annotated[int, Query(ge=1, le=366, description="How many UTC days back, today included.")]
Format = Annotated[str, Query(pattern="^(json|csv)$")]


async def _account(session: SessionDep, handle: str) -> Account:
    account = await AccountStore(session).find(handle.lower())
    if account is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    return account


def _csv(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/posts/{post_id}/analytics")
async def get_post_analytics(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    """Deliveries accepted, servers and followers reached, interactions from the fediverse
    and from linked Mastodon accounts, and both combined."""
    post = await session.get(Post, post_id)
    if post is None:
        raise Problem(404, f"No post {post_id}", type_="unknown-post")
    return (await post_analytics(session, post)).as_json()


@router.get("/accounts/{handle}/analytics", response_model=None)
async def get_account_analytics(
    handle: str,
    session: SessionDep,
    days: Days = 30,
    format: Format = "json",  # noqa: A002
) -> Response | dict[str, Any]:
    """Per day: posts, reach, interactions and follower growth; followers by server; the
    servers that engaged most. `format=csv` gives the daily series."""
    account = await _account(session, handle)
    analytics = await account_analytics(session, account, days=days)
    if format == "csv":
        return _csv(days_csv(analytics), f"{account.handle}_analytics.csv")
    return analytics.as_json()


@router.get("/accounts/{handle}/analytics/posts", response_model=None)
async def get_account_posts_analytics(
    handle: str,
    session: SessionDep,
    days: Days = 30,
    format: Format = "json",  # noqa: A002
) -> Response | dict[str, Any]:
    """Every post published in the period with its figures; `format=csv` for spreadsheets."""
    account = await _account(session, handle)
    now = datetime.now(UTC)
    items = await account_posts_analytics(
        session, account, since=now - timedelta(days=days), until=now + timedelta(seconds=1)
    )
    if format == "csv":
        return _csv(posts_csv(items), f"{account.handle}_posts.csv")
    return {"account": account.handle, "posts": [item.as_json() for item in items]}
