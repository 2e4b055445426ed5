"""Admin API: what the relay is doing (read only). Actions live with the modules that own them:
dead letters and host pauses in admin_deliveries, follows in admin_federation, scheduled
posts in admin_posts, failed webhooks in admin_webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.reporting import queries
from service.web.dependencies import AdminDep, RowId, SessionDep
from service.web.problems import Problem

router = APIRouter(
    prefix="/api/admin/monitoring", tags=["admin: monitoring"], dependencies=[AdminDep]
)

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned.")]
WindowMinutes = Annotated[
    int, Query(ge=1, le=7 * 24 * 60, description="Look-back window in minutes.")
]
Days = Annotated[int, Query(ge=1, le=3650, description="Look-back window in days.")]
Handle = Annotated[str | None, Query(max_length=64, description="Only this account.")]


@router.get("/overview", summary="Everything an on-call operator looks at first")
async def overview(session: SessionDep, window_minutes: WindowMinutes = 15) -> dict[str, Any]:
    return await queries.overview(session, timedelta(minutes=window_minutes))


@router.get("/queue", summary="Deliveries by queue state and the oldest ready delivery's age")
async def queue(session: SessionDep) -> queries.QueueDepth:
    return await queries.queue_depth(session)


@router.get("/throughput", summary="Deliveries per minute, success rate and latency percentiles")
async def throughput(session: SessionDep, window_minutes: WindowMinutes = 60) -> queries.Throughput:
    return await queries.throughput(session, timedelta(minutes=window_minutes))


@router.get("/hosts", summary="Destination hosts, the troubled ones first")
async def hosts(
    session: SessionDep,
    unhealthy: Annotated[bool, Query(description="Only hosts that are not ok.")] = False,
    limit: Limit = 200,
) -> list[queries.HostStatus]:
    return await queries.host_statuses(session, unhealthy_only=unhealthy, limit=limit)


@router.get("/hosts/{host}", summary="One destination host")
async def host(host: str, session: SessionDep) -> queries.HostStatus:
    status = await queries.host_status(session, host)
    if status is None:
        raise Problem(404, f"No delivery has gone to '{host}' yet", type_="unknown-host")
    return status


@router.get("/posts", summary="Latest posts with delivery totals and interactions")
async def posts(session: SessionDep, limit: Limit = 20) -> list[queries.RecentPost]:
    return await queries.recent_posts(session, limit=limit)


@router.get("/posts/{post_id}", summary="Where a post went, where it did not, and why")
async def post(post_id: RowId, session: SessionDep, limit: Limit = 200) -> queries.PostReport:
    report = await queries.post_report(session, post_id, limit=limit)
    if report is None:
        raise Problem(404, f"No post {post_id}", type_="unknown-post")
    return report


@router.get("/scheduled", summary="Posts waiting for their publication time")
async def scheduled(session: SessionDep, limit: Limit = 100) -> list[queries.ScheduledPost]:
    return await queries.scheduled_posts(session, limit=limit)


@router.get("/dead-letters", summary="Deliveries that gave up, newest first")
async def dead_letters(
    session: SessionDep,
    host: Annotated[str | None, Query(max_length=255)] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    total, letters = await queries.dead_letters(session, host=host, limit=limit)
    return {"total": total, "items": letters}


@router.get("/webhooks", summary="Webhooks stored (by state), refused (by reason), failing")
async def webhooks(session: SessionDep) -> queries.WebhookSummary:
    return await queries.webhook_summary(session)


@router.get("/webhooks/failed", summary="Webhook events that gave up, newest first")
async def failed_webhooks(
    session: SessionDep,
    source: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    total, events = await queries.failed_webhooks(session, source=source, limit=limit)
    return {"total": total, "items": events}


@router.get("/pending-follows", summary="Follow requests waiting for approval")
async def pending_follows(session: SessionDep, limit: Limit = 100) -> list[queries.PendingFollow]:
    return await queries.pending_follows(session, limit=limit)


@router.get("/followers", summary="Follower counts now and per day")
async def followers(session: SessionDep, account: Handle = None, days: Days = 90) -> dict[str, Any]:
    return {
        "accounts": await queries.account_summaries(session),
        "history": await queries.follower_history(session, handle=account, days=days),
    }


@router.get("/interactions", summary="Likes, boosts and replies per day")
async def interactions(
    session: SessionDep, account: Handle = None, days: Days = 30
) -> list[queries.DailyInteractions]:
    return await queries.interaction_history(session, handle=account, days=days)
