"""Read-only queries behind the monitoring API, the dashboard, the CLI and `/metrics`.

Every figure is an aggregate computed by the database (GROUP BY over indexed columns), so the
answer is the same whichever process asks and costs one round trip per question, not one per
row. Nothing here changes state: actions (retry, pause, approve, ...) live with the modules
that own them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.peers.retry_schedule import Verdict, classify_status
from service.db.models import (
    Account,
    Activity,
    Delivery,
    DeliveryAttempt,
    DestinationHost,
    Follower,
    FollowerSnapshot,
    Interaction,
    Post,
    WebhookEvent,
    WebhookRejection,
)

QUEUE_STATES: Final = ("ready", "scheduled", "in_flight", "retrying", "parked", "dead")
UNFINISHED_STATES: Final = ("pending", "in_flight", "retrying", "parked", "dead")
HOST_HEALTH_STATES: Final = ("ok", "failing", "unavailable")
PERCENTILES: Final = (0.5, 0.9, 0.99)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def epoch_bucket(session: AsyncSession, column: Any, seconds: int) -> ColumnElement[Any]:
    """The start (Unix seconds) of the fixed-width time bucket a timestamp falls into."""
    if _dialect(session) == "sqlite":
        # SQLite stores UTC timestamps as naive ISO text; strftime('%s') reads them as UTC.
        epoch: ColumnElement[Any] = cast(func.strftime("%s", column), Integer)
        return (epoch // seconds) * seconds
    return func.floor(func.extract("epoch", column) / seconds) * seconds


# --- queue ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueDepth:
    counts: dict[str, int]
    # Seconds the longest-waiting due delivery has been waiting for a worker (0 when none).
    oldest_ready_age_seconds: float
    oldest_ready_delivery_id: int | None

    @property
    def backlog(self) -> int:
        return self.counts["ready"] + self.counts["retrying"]


async def queue_depth(session: AsyncSession, now: datetime | None = None) -> QueueDepth:
    """Deliveries by queue state: ready (pending, due), scheduled (pending or retrying, not yet
    due), in flight, retrying (due), parked (host unavailable or paused), dead."""
    now = now or utcnow()
    due = Delivery.next_attempt_at <= now
    rows = await session.execute(
        select(Delivery.state, due.label("due"), func.count())
        .where(Delivery.state.in_(UNFINISHED_STATES))
        .group_by(Delivery.state, due)
    )
    counts = dict.fromkeys(QUEUE_STATES, 0)
    for state, is_due, count in rows:
        if state in ("pending", "retrying") and not is_due:
            counts["scheduled"] += count
        elif state == "pending":
            counts["ready"] += count
        else:
            counts[state] += count
    oldest = (
        await session.execute(
            select(Delivery.id, Delivery.next_attempt_at)
            .where(Delivery.state.in_(("pending", "retrying")), due)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(1)
        )
    ).first()
    if oldest is None:
        return QueueDepth(counts, 0.0, None)
    age = max(0.0, (now - oldest.next_attempt_at).total_seconds())
    return QueueDepth(counts, age, oldest.id)


# --- delivery throughput -------------------------------------------------------------------


def attempt_outcome(status_code: int | None) -> str:
    """The outcome label of one delivery attempt (see `Verdict`); no status is a network error."""
    if status_code is None:
        return "network_error"
    verdict = classify_status(status_code)
    return {
        Verdict.DELIVERED: "delivered",
        Verdict.TRANSIENT: "retryable",
        Verdict.PERMANENT: "rejected",
        Verdict.GONE: "gone",
    }[verdict]


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: datetime
    delivered: int
    failed: int


@dataclass(frozen=True, slots=True)
class Throughput:
    window_seconds: int
    attempts: int
    delivered: int
    failed: int
    success_rate: float | None
    failure_rate: float | None
    deliveries_per_minute: float
    latency_ms: dict[str, int | None]
    per_minute: list[MinuteCount]
    outcomes: dict[str, int]


async def _percentiles(session: AsyncSession, since: datetime) -> dict[str, int | None]:
    in_window = and_(
        DeliveryAttempt.attempted_at >= since, DeliveryAttempt.duration_ms.is_not(None)
    )
    total = int(
        (
            await session.execute(
                select(func.count()).select_from(DeliveryAttempt).where(in_window)
            )
        ).scalar_one()
    )
    result: dict[str, int | None] = {}
    for quantile in PERCENTILES:
        name = f"p{round(quantile * 100)}"
        if total == 0:
            result[name] = None
            continue
        # Nearest-rank percentile; portable across SQLite and PostgreSQL.
        offset = max(0, math.ceil(quantile * total) - 1)
        value = (
            await session.execute(
                select(DeliveryAttempt.duration_ms)
                .where(in_window)
                .order_by(DeliveryAttempt.duration_ms)
                .limit(1)
                .offset(offset)
            )
        ).scalar_one_or_none()
        result[name] = value
    return result


async def throughput(
    session: AsyncSession, window: timedelta = timedelta(minutes=60), now: datetime | None = None
) -> Throughput:
    """Delivery attempts over the last `window`: per minute, success and failure rates, latency."""
    now = now or utcnow()
    since = now - window
    minute = epoch_bucket(session, DeliveryAttempt.attempted_at, 60).label("minute")
    success = and_(DeliveryAttempt.status_code >= 200, DeliveryAttempt.status_code < 300)
    rows = await session.execute(
        select(
            minute,
            func.sum(case((success, 1), else_=0)),
            func.count(),
        )
        .where(DeliveryAttempt.attempted_at >= since)
        .group_by(minute)
        .order_by(minute)
    )
    per_minute = [
        MinuteCount(
            datetime.fromtimestamp(int(start), UTC), int(ok or 0), int(count) - int(ok or 0)
        )
        for start, ok, count in rows
    ]
    status_rows = await session.execute(
        select(DeliveryAttempt.status_code, func.count())
        .where(DeliveryAttempt.attempted_at >= since)
        .group_by(DeliveryAttempt.status_code)
    )
    outcomes: dict[str, int] = {}
    for status, count in status_rows:
        label = attempt_outcome(status)
        outcomes[label] = outcomes.get(label, 0) + int(count)
    delivered = sum(item.delivered for item in per_minute)
    attempts = delivered + sum(item.failed for item in per_minute)
    window_seconds = int(window.total_seconds())
    return Throughput(
        window_seconds=window_seconds,
        attempts=attempts,
        delivered=delivered,
        failed=attempts - delivered,
        success_rate=delivered / attempts if attempts else None,
        failure_rate=(attempts - delivered) / attempts if attempts else None,
        deliveries_per_minute=delivered / (window_seconds / 60) if window_seconds else 0.0,
        latency_ms=await _percentiles(session, since),
        per_minute=per_minute,
        outcomes=outcomes,
    )


# --- destination hosts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostStatus:
    host: str
    health: str
    paused: bool
    failing_since: datetime | None
    failure_days: int
    breaker_open_until: datetime | None
    breaker_open: bool
    consecutive_failures: int
    attempts: int
    last_error: str | None
    last_success_at: datetime | None
    # One word for a human: paused, unavailable, breaker-open, failing or ok.
    status: str
    waiting: dict[str, int] = field(default_factory=dict)


def _status_word(row: DestinationHost, breaker_open: bool) -> str:
    if row.paused:
        return "paused"
    if row.health == "unavailable":
        return "unavailable"
    if breaker_open:
        return "breaker-open"
    return row.health


def _host_status(row: DestinationHost, now: datetime, waiting: dict[str, int]) -> HostStatus:
    breaker_open = row.breaker_open_until is not None and row.breaker_open_until > now
    return HostStatus(
        status=_status_word(row, breaker_open),
        host=row.host,
        health=row.health,
        paused=row.paused,
        failing_since=row.failing_since,
        failure_days=len(row.failure_days or []),
        breaker_open_until=row.breaker_open_until,
        breaker_open=breaker_open,
        consecutive_failures=row.consecutive_failures,
        attempts=int(row.attempts),
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        waiting=waiting,
    )


def _unhealthy(now: datetime) -> ColumnElement[bool]:
    return or_(
        DestinationHost.health != "ok",
        DestinationHost.paused.is_(True),
        DestinationHost.breaker_open_until > now,
    )


async def _waiting_by_host(session: AsyncSession, hosts: list[str]) -> dict[str, dict[str, int]]:
    if not hosts:
        return {}
    rows = await session.execute(
        select(Delivery.host, Delivery.state, func.count())
        .where(Delivery.host.in_(hosts), Delivery.state.in_(UNFINISHED_STATES))
        .group_by(Delivery.host, Delivery.state)
    )
    result: dict[str, dict[str, int]] = {}
    for host, state, count in rows:
        result.setdefault(host, {})[state] = int(count)
    return result


async def host_statuses(
    session: AsyncSession,
    *,
    unhealthy_only: bool = False,
    limit: int = 200,
    now: datetime | None = None,
) -> list[HostStatus]:
    """Destination hosts, the troubled ones first (unavailable, failing, paused, then ok)."""
    now = now or utcnow()
    rank = case(
        (DestinationHost.paused.is_(True), 0),
        (DestinationHost.health == "unavailable", 1),
        (DestinationHost.breaker_open_until > now, 2),
        (DestinationHost.health == "failing", 3),
        else_=4,
    )
    statement = select(DestinationHost).order_by(
        rank, DestinationHost.failing_since, DestinationHost.host
    )
    if unhealthy_only:
        statement = statement.where(_unhealthy(now))
    rows = list((await session.execute(statement.limit(limit))).scalars())
    waiting = await _waiting_by_host(session, [row.host for row in rows])
    return [_host_status(row, now, waiting.get(row.host, {})) for row in rows]


async def host_status(
    session: AsyncSession, host: str, now: datetime | None = None
) -> HostStatus | None:
    row = await session.get(DestinationHost, host)
    if row is None:
        return None
    waiting = await _waiting_by_host(session, [host])
    return _host_status(row, now or utcnow(), waiting.get(host, {}))


async def host_health_counts(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """How many hosts are ok, failing, unavailable; and how many are paused or breaker-open."""
    now = now or utcnow()
    breaker = DestinationHost.breaker_open_until > now
    row = (
        await session.execute(
            select(
                *(
                    func.sum(case((DestinationHost.health == state, 1), else_=0))
                    for state in HOST_HEALTH_STATES
                ),
                func.sum(case((DestinationHost.paused.is_(True), 1), else_=0)),
                func.sum(case((breaker, 1), else_=0)),
            )
        )
    ).one()
    names = (*HOST_HEALTH_STATES, "paused", "breaker_open")
    return {name: int(value or 0) for name, value in zip(names, row, strict=True)}


# --- posts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityReport:
    id: int
    activity_uri: str
    activity_type: str
    created_at: datetime
    webhook_event_id: int | None
    states: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class MissingDelivery:
    delivery_id: int
    activity_id: int
    activity_type: str
    inbox: str
    host: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    host_status: str


@dataclass(frozen=True, slots=True)
class PostReport:
    post_id: int
    object_uri: str
    account: str
    state: str
    scheduled_at: datetime | None
    published_at: datetime | None
    accepted_followers: int
    activities: list[ActivityReport]
    delivered_hosts: dict[str, int]
    not_delivered: list[MissingDelivery]
    not_delivered_total: int
    reasons: list[str]


async def _post_activities(session: AsyncSession, post_id: int) -> list[ActivityReport]:
    rows = await session.execute(
        select(Activity, Delivery.state, func.count(Delivery.id))
        .join(Delivery, Delivery.activity_id == Activity.id, isouter=True)
        .where(Activity.post_id == post_id)
        .group_by(Activity.id, Delivery.state)
        .order_by(Activity.id)
    )
    reports: dict[int, tuple[Activity, dict[str, int]]] = {}
    for activity, state, count in rows:
        _, states = reports.setdefault(activity.id, (activity, {}))
        if state is not None:
            states[state] = int(count)
    return [
        ActivityReport(
            id=activity.id,
            activity_uri=activity.activity_uri,
            activity_type=activity.activity_type,
            created_at=activity.created_at,
            webhook_event_id=activity.webhook_event_id,
            states=states,
            total=sum(states.values()),
        )
        for activity, states in reports.values()
    ]


def _reasons(
    post: Post,
    account: Account,
    followers: int,
    activities: list[ActivityReport],
    missing: list[MissingDelivery],
) -> list[str]:
    """Plain-language answers to "why didn't my post arrive?"."""
    reasons: list[str] = []
    if post.state == "scheduled":
        reasons.append(f"The post is scheduled for {post.scheduled_at:%Y-%m-%d %H:%M} UTC.")
    elif post.state == "cancelled":
        reasons.append("The post was cancelled before it was published.")
    elif post.state == "deleted":
        reasons.append("The post was deleted.")
    if account.paused:
        reasons.append(f"Account @{account.handle} is paused: nothing it publishes is delivered.")
    if post.state != "scheduled" and not activities:
        reasons.append("No activity was published for this post.")
    if activities and all(report.total == 0 for report in activities):
        reasons.append(
            "There were no accepted followers to deliver to when it was published "
            f"(accepted followers now: {followers})."
        )
    by_status: dict[str, set[str]] = {}
    for item in missing:
        by_status.setdefault(item.host_status, set()).add(item.host)
        if item.state == "dead":
            by_status.setdefault("dead", set()).add(item.host)
    explanations = {
        "paused": "Delivery to these hosts is paused by an operator",
        "unavailable": "These hosts have failed for days and are treated as unavailable",
        "breaker-open": "These hosts are failing; deliveries wait for them to recover",
        "failing": "These hosts are failing; deliveries are being retried",
        "dead": "Deliveries gave up on these hosts (dead letters, can be retried)",
    }
    for status, text in explanations.items():
        hosts = by_status.get(status)
        if hosts:
            listed = ", ".join(sorted(hosts)[:10]) + (" ..." if len(hosts) > 10 else "")
            reasons.append(f"{text}: {listed}.")
    return reasons


async def post_report(
    session: AsyncSession, post_id: int, *, limit: int = 200, now: datetime | None = None
) -> PostReport | None:
    """Where a post's activities went and where they did not, with the reasons."""
    now = now or utcnow()
    post = await session.get(Post, post_id)
    if post is None:
        return None
    account = await session.get(Account, post.account_id)
    assert account is not None
    activities = await _post_activities(session, post_id)
    activity_ids = [report.id for report in activities]
    delivered_rows = await session.execute(
        select(Delivery.host, func.count())
        .where(Delivery.activity_id.in_(activity_ids), Delivery.state == "delivered")
        .group_by(Delivery.host)
        .order_by(func.count().desc(), Delivery.host)
    )
    delivered_hosts = {host: int(count) for host, count in delivered_rows}
    undelivered = and_(
        Delivery.activity_id.in_(activity_ids), Delivery.state.not_in(("delivered",))
    )
    missing_total = int(
        (
            await session.execute(select(func.count()).select_from(Delivery).where(undelivered))
        ).scalar_one()
    )
    missing_rows = await session.execute(
        select(Delivery, Activity.activity_type, DestinationHost)
        .join(Activity, Activity.id == Delivery.activity_id)
        .join(DestinationHost, DestinationHost.host == Delivery.host, isouter=True)
        .where(undelivered)
        .order_by(Delivery.host, Delivery.id)
        .limit(limit)
    )
    missing = []
    for delivery, activity_type, host_row in missing_rows:
        status = _host_status(host_row, now, {}).status if host_row is not None else "ok"
        missing.append(
            MissingDelivery(
                delivery_id=delivery.id,
                activity_id=delivery.activity_id,
                activity_type=activity_type,
                inbox=delivery.inbox,
                host=delivery.host,
                state=delivery.state,
                attempts=delivery.attempts,
                last_status=delivery.last_status,
                last_error=delivery.last_error,
                next_attempt_at=delivery.next_attempt_at,
                host_status=status,
            )
        )
    followers = int(
        (
            await session.execute(
                select(func.count())
                .select_from(Follower)
                .where(Follower.account_id == account.id, Follower.state == "accepted")
            )
        ).scalar_one()
    )
    return PostReport(
        post_id=post.id,
        object_uri=post.object_uri,
        account=account.handle,
        state=post.state,
        scheduled_at=post.scheduled_at,
        published_at=post.published_at,
        accepted_followers=followers,
        activities=activities,
        delivered_hosts=delivered_hosts,
        not_delivered=missing,
        not_delivered_total=missing_total,
        reasons=_reasons(post, account, followers, activities, missing),
    )


@dataclass(frozen=True, slots=True)
class RecentPost:
    post_id: int
    account: str
    object_uri: str
    state: str
    published_at: datetime | None
    delivered: int
    not_delivered: int
    likes: int
    boosts: int
    replies: int


async def recent_posts(session: AsyncSession, *, limit: int = 20) -> list[RecentPost]:
    """The latest published posts with delivery totals and interaction counts."""
    posts = list(
        await session.execute(
            select(Post, Account.handle)
            .join(Account, Account.id == Post.account_id)
            .where(Post.state.in_(("published", "deleted")))
            .order_by(Post.published_at.desc().nulls_last(), Post.id.desc())
            .limit(limit)
        )
    )
    ids = [post.id for post, _ in posts]
    if not ids:
        return []
    delivery_rows = await session.execute(
        select(Activity.post_id, Delivery.state, func.count())
        .join(Delivery, Delivery.activity_id == Activity.id)
        .where(Activity.post_id.in_(ids))
        .group_by(Activity.post_id, Delivery.state)
    )
    deliveries: dict[int, list[int]] = {}
    for post_id, state, count in delivery_rows:
        if post_id is None:
            continue
        deliveries.setdefault(post_id, [0, 0])[0 if state == "delivered" else 1] += int(count)
    interactions = await interactions_by_post(session, ids)
    return [
        RecentPost(
            post_id=post.id,
            account=handle,
            object_uri=post.object_uri,
            state=post.state,
            published_at=post.published_at,
            delivered=deliveries.get(post.id, [0, 0])[0],
            not_delivered=deliveries.get(post.id, [0, 0])[1],
            likes=interactions.get(post.id, {}).get("like", 0),
            boosts=interactions.get(post.id, {}).get("boost", 0),
            replies=interactions.get(post.id, {}).get("reply", 0),
        )
        for post, handle in posts
    ]


@dataclass(frozen=True, slots=True)
class ScheduledPost:
    post_id: int
    account: str
    object_uri: str
    scheduled_at: datetime | None
    source: str
    title: str


async def scheduled_posts(session: AsyncSession, *, limit: int = 100) -> list[ScheduledPost]:
    rows = await session.execute(
        select(Post, Account.handle)
        .join(Account, Account.id == Post.account_id)
        .where(Post.state == "scheduled")
        .order_by(Post.scheduled_at, Post.id)
        .limit(limit)
    )
    result = []
    for post, handle in rows:
        document = post.document or {}
        title = str(document.get("name") or document.get("summary") or post.canonical_url or "")
        result.append(
            ScheduledPost(post.id, handle, post.object_uri, post.scheduled_at, post.source, title)
        )
    return result


# --- dead letters --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    delivery_id: int
    activity_id: int
    activity_type: str
    post_id: int | None
    account: str
    inbox: str
    host: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime


async def dead_letters(
    session: AsyncSession, *, host: str | None = None, limit: int = 100
) -> tuple[int, list[DeadLetter]]:
    """Dead deliveries (newest first) and how many there are in all."""
    where = [Delivery.state == "dead"]
    if host:
        where.append(Delivery.host == host)
    total = int(
        (
            await session.execute(select(func.count()).select_from(Delivery).where(*where))
        ).scalar_one()
    )
    rows = await session.execute(
        select(Delivery, Activity.activity_type, Activity.post_id, Account.handle)
        .join(Activity, Activity.id == Delivery.activity_id)
        .join(Account, Account.id == Delivery.account_id)
        .where(*where)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    letters = [
        DeadLetter(
            delivery_id=delivery.id,
            activity_id=delivery.activity_id,
            activity_type=activity_type,
            post_id=post_id,
            account=handle,
            inbox=delivery.inbox,
            host=delivery.host,
            attempts=delivery.attempts,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
        )
        for delivery, activity_type, post_id, handle in rows
    ]
    return total, letters


# --- webhooks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookSummary:
    # Stored events by source, then state (received, processed, ignored, failed, scheduled).
    stored: dict[str, dict[str, int]]
    # Requests refused before storage by source, then reason (as in /metrics).
    rejected: dict[str, dict[str, int]]
    # Stored events whose processing failed and that wait for their next retry.
    retrying: int
    # Events that used up their retries (or cannot be parsed): an operator may retry them.
    failed: int


async def stored_webhook_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Stored webhook events by source, then state."""
    stored: dict[str, dict[str, int]] = {}
    rows = await session.execute(
        select(WebhookEvent.source, WebhookEvent.state, func.count()).group_by(
            WebhookEvent.source, WebhookEvent.state
        )
    )
    for source, state, count in rows:
        stored.setdefault(source, {})[state] = int(count)
    return stored


async def rejected_webhook_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Webhook requests refused before storage, by source, then reason (the counts every API
    process has written so far; each writes every few seconds)."""
    rejected: dict[str, dict[str, int]] = {}
    for source, reason, count in await session.execute(
        select(WebhookRejection.source, WebhookRejection.reason, WebhookRejection.count)
    ):
        rejected.setdefault(source, {})[reason] = int(count)
    return rejected


async def webhook_summary(session: AsyncSession) -> WebhookSummary:
    stored = await stored_webhook_counts(session)
    rejected = await rejected_webhook_counts(session)
    retrying = await session.scalar(
        select(func.count())
        .select_from(WebhookEvent)
        .where(WebhookEvent.state == "received", WebhookEvent.attempts > 0)
    )
    failed = sum(states.get("failed", 0) for states in stored.values())
    return WebhookSummary(stored, rejected, int(retrying or 0), failed)


@dataclass(frozen=True, slots=True)
class FailedWebhook:
    event_id: int
    source: str
    event_type: str
    delivery_key: str
    attempts: int
    error: str | None
    received_at: datetime
    failed_at: datetime | None


async def failed_webhooks(
    session: AsyncSession, *, source: str | None = None, limit: int = 100
) -> tuple[int, list[FailedWebhook]]:
    """Webhook events marked failed (newest first) and how many there are in all."""
    where = [WebhookEvent.state == "failed"]
    if source:
        where.append(WebhookEvent.source == source)
    total = await session.scalar(select(func.count()).select_from(WebhookEvent).where(*where))
    rows = await session.execute(
        select(
            WebhookEvent.id,
            WebhookEvent.source,
            WebhookEvent.event_type,
            WebhookEvent.delivery_key,
            WebhookEvent.attempts,
            WebhookEvent.error,
            WebhookEvent.received_at,
            WebhookEvent.processed_at,
        )
        .where(*where)
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    return int(total or 0), [FailedWebhook(*row) for row in rows]


# --- audience ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountSummary:
    handle: str
    paused: bool
    followers: int
    pending_follows: int


async def account_summaries(session: AsyncSession) -> list[AccountSummary]:
    rows = await session.execute(
        select(
            Account.handle,
            Account.paused,
            func.sum(case((Follower.state == "accepted", 1), else_=0)),
            func.sum(case((Follower.state == "pending", 1), else_=0)),
        )
        .join(Follower, Follower.account_id == Account.id, isouter=True)
        .group_by(Account.id, Account.handle, Account.paused)
        .order_by(Account.handle)
    )
    return [
        AccountSummary(handle, bool(paused), int(accepted or 0), int(pending or 0))
        for handle, paused, accepted, pending in rows
    ]


async def follower_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Follower.state, func.count()).group_by(Follower.state))
    counts = {"accepted": 0, "pending": 0}
    counts.update({state: int(count) for state, count in rows})
    return counts


@dataclass(frozen=True, slots=True)
class PendingFollow:
    follower_id: int
    account: str
    actor_uri: str
    host: str
    requested_at: datetime


async def pending_follows(session: AsyncSession, *, limit: int = 100) -> list[PendingFollow]:
    rows = await session.execute(
        select(Follower, Account.handle)
        .join(Account, Account.id == Follower.account_id)
        .where(Follower.state == "pending")
        .order_by(Follower.created_at, Follower.id)
        .limit(limit)
    )
    return [
        PendingFollow(follower.id, handle, follower.actor_uri, follower.host, follower.created_at)
        for follower, handle in rows
    ]


@dataclass(frozen=True, slots=True)
class DailyCount:
    day: date
    value: int


async def follower_history(
    session: AsyncSession, *, handle: str | None = None, days: int = 90, today: date | None = None
) -> list[DailyCount]:
    """Followers per day from the daily snapshots, summed over accounts unless one is named."""
    today = today or utcnow().date()
    statement = (
        select(FollowerSnapshot.day, func.sum(FollowerSnapshot.followers))
        .where(FollowerSnapshot.day > today - timedelta(days=days))
        .group_by(FollowerSnapshot.day)
        .order_by(FollowerSnapshot.day)
    )
    if handle is not None:
        statement = statement.join(Account, Account.id == FollowerSnapshot.account_id).where(
            Account.handle == handle
        )
    rows = await session.execute(statement)
    return [DailyCount(day, int(value or 0)) for day, value in rows]


async def interactions_by_post(
    session: AsyncSession, post_ids: list[int]
) -> dict[int, dict[str, int]]:
    """Live (not undone) likes, boosts and replies per post."""
    if not post_ids:
        return {}
    rows = await session.execute(
        select(Interaction.post_id, Interaction.kind, func.count())
        .where(Interaction.post_id.in_(post_ids), Interaction.undone_at.is_(None))
        .group_by(Interaction.post_id, Interaction.kind)
    )
    result: dict[int, dict[str, int]] = {}
    for post_id, kind, count in rows:
        result.setdefault(post_id, {})[kind] = int(count)
    return result


@dataclass(frozen=True, slots=True)
class DailyInteractions:
    day: date
    likes: int
    boosts: int
    replies: int


async def interaction_history(
    session: AsyncSession, *, handle: str | None = None, days: int = 30, now: datetime | None = None
) -> list[DailyInteractions]:
    """Interactions received per UTC day (undone ones included: they happened)."""
    now = now or utcnow()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = epoch_bucket(session, Interaction.created_at, 86400).label("day")
    statement = (
        select(day, Interaction.kind, func.count())
        .where(Interaction.created_at >= start)
        .group_by(day, Interaction.kind)
        .order_by(day)
    )
    if handle is not None:
        statement = statement.join(Account, Account.id == Interaction.account_id).where(
            Account.handle == handle
        )
    per_day: dict[date, dict[str, int]] = {}
    for start_seconds, kind, count in await session.execute(statement):
        key = datetime.fromtimestamp(int(start_seconds), UTC).date()
        per_day.setdefault(key, {})[kind] = int(count)
    return [
        DailyInteractions(key, kinds.get("like", 0), kinds.get("boost", 0), kinds.get("reply", 0))
        for key, kinds in sorted(per_day.items())
    ]


async def overview(session: AsyncSession, window: timedelta) -> dict[str, Any]:
    """Everything an on-call operator looks at first (the API's overview and `fedirelay status`)."""
    depth = await queue_depth(session)
    flow = await throughput(session, window)
    return {
        "queue": depth,
        "backlog": depth.backlog,
        "throughput": {
            "window_seconds": flow.window_seconds,
            "attempts": flow.attempts,
            "delivered": flow.delivered,
            "failed": flow.failed,
            "success_rate": flow.success_rate,
            "deliveries_per_minute": flow.deliveries_per_minute,
            "latency_ms": flow.latency_ms,
        },
        "hosts": await host_health_counts(session),
        "followers": await follower_counts(session),
        "scheduled_posts": len(await scheduled_posts(session, limit=1000)),
        "dead_letters": depth.counts["dead"],
        "webhooks": await webhook_summary(session),
    }
