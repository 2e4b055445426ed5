"""What the dashboard pages show: monitoring queries shaped for the templates, with charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from service.reporting import queries
from service.web.dashboard.charts import Series, horizontal_bars, line_chart, stacked_bars

NOTICES: dict[str, str] = {
    "retried": "Dead letters queued for delivery again",
    "webhooks-retried": "Failed webhooks queued for processing again",
    "discarded": "Dead letters discarded",
    "host-paused": "Host paused",
    "host-resumed": "Host resumed",
    "account-paused": "Account paused",
    "account-resumed": "Account resumed",
    "cancelled": "Scheduled post cancelled",
    "rescheduled": "Scheduled post moved",
    "approved": "Follow request approved",
    "rejected": "Follow request rejected",
    "failed": "The action could not be done",
}


def notice_text(
    code: str | None, count: str | None = None, detail: str | None = None
) -> str | None:
    """A fixed message for a result code (never text from the URL, except a number)."""
    if not code or code not in NOTICES:
        return None
    text = NOTICES[code]
    if count and count.isdigit():
        text += f": {int(count)}"
    if detail and code == "failed":
        text += f" ({detail[:200]})"
    return text


def format_age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


@dataclass(frozen=True, slots=True)
class Overview:
    queue: queries.QueueDepth
    flow: queries.Throughput
    hosts: list[queries.HostStatus]
    host_counts: dict[str, int]
    dead_total: int
    dead: list[queries.DeadLetter]
    dead_hosts: list[str]
    scheduled: list[queries.ScheduledPost]
    pending: list[queries.PendingFollow]
    accounts: list[queries.AccountSummary]
    posts: list[queries.RecentPost]
    webhooks: queries.WebhookSummary
    failed_webhooks: list[queries.FailedWebhook]
    charts: dict[str, Markup | None]
    alerts: list[str]

    @property
    def refused_webhooks(self) -> dict[str, int]:
        """Refused webhook requests by reason, all sources together."""
        totals: dict[str, int] = {}
        for reasons in self.webhooks.rejected.values():
            for reason, count in reasons.items():
                totals[reason] = totals.get(reason, 0) + count
        return dict(sorted(totals.items()))


def _alerts(
    queue: queries.QueueDepth,
    host_counts: dict[str, int],
    dead_total: int,
    webhooks: queries.WebhookSummary,
) -> list[str]:
    """Headlines for the top of the page: what needs a human now."""
    alerts = []
    if queue.oldest_ready_age_seconds > 300:
        alerts.append(
            f"Deliveries are waiting: the oldest due one has waited "
            f"{format_age(queue.oldest_ready_age_seconds)} (backlog {queue.backlog})."
        )
    failing = host_counts.get("failing", 0) + host_counts.get("unavailable", 0)
    if failing:
        alerts.append(f"{failing} destination host(s) failing or unavailable.")
    if dead_total:
        alerts.append(f"{dead_total} dead letter(s) can be retried or discarded.")
    if webhooks.failed:
        alerts.append(f"{webhooks.failed} webhook(s) failed to process and can be retried.")
    return alerts


def _charts(
    flow: queries.Throughput,
    followers: list[queries.DailyCount],
    posts: list[queries.RecentPost],
) -> dict[str, Markup | None]:
    minutes = [item.minute.strftime("%H:%M") for item in flow.per_minute]
    posts_with_reactions = [p for p in posts if p.likes + p.boosts + p.replies][:10]
    return {
        "deliveries": stacked_bars(
            "Delivery attempts per minute (UTC)",
            minutes,
            [
                Series("delivered", [item.delivered for item in flow.per_minute], "ok"),
                Series("failed", [item.failed for item in flow.per_minute], "bad"),
            ],
        ),
        "followers": line_chart(
            "Followers per day",
            [point.day.isoformat() for point in followers],
            [point.value for point in followers],
        ),
        "interactions": None
        if not posts_with_reactions
        else horizontal_bars(
            "Interactions per post",
            [f"#{p.post_id} @{p.account}" for p in posts_with_reactions],
            [
                Series("likes", [p.likes for p in posts_with_reactions], "like"),
                Series("boosts", [p.boosts for p in posts_with_reactions], "boost"),
                Series("replies", [p.replies for p in posts_with_reactions], "reply"),
            ],
        ),
    }


async def overview(session: AsyncSession) -> Overview:
    queue = await queries.queue_depth(session)
    flow = await queries.throughput(session, timedelta(minutes=60))
    host_counts = await queries.host_health_counts(session)
    dead_total, dead = await queries.dead_letters(session, limit=25)
    posts = await queries.recent_posts(session, limit=20)
    followers = await queries.follower_history(session, days=90)
    webhooks = await queries.webhook_summary(session)
    _, failed_webhooks = await queries.failed_webhooks(session, limit=25)
    return Overview(
        queue=queue,
        flow=flow,
        hosts=await queries.host_statuses(session, unhealthy_only=True, limit=50),
        host_counts=host_counts,
        dead_total=dead_total,
        dead=dead,
        dead_hosts=sorted({letter.host for letter in dead}),
        scheduled=await queries.scheduled_posts(session, limit=50),
        pending=await queries.pending_follows(session, limit=50),
        accounts=await queries.account_summaries(session),
        posts=posts,
        webhooks=webhooks,
        failed_webhooks=failed_webhooks,
        charts=_charts(flow, followers, posts),
        alerts=_alerts(queue, host_counts, dead_total, webhooks),
    )


def template_globals() -> dict[str, Any]:
    return {"format_age": format_age}
