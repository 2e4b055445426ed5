"""Reach and interaction figures: what a post achieved, and how an account's audience grows.

Reach counts only deliveries that a server accepted (state `delivered`) of the activities
that first published a post (its Create), to inboxes (not to Mastodon API targets). A
follower counts as reached when its own inbox or its server's shared inbox received one.
Interactions are the likes, boosts and replies the inbox recorded (undone ones excluded);
where the post also went to a Mastodon account through the API, that status's own counts
(refreshed by a cron job) are reported beside them and added into `combined`.

Daily series reuse the dashboard's bucketing (`service.reporting.queries`), so both agree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import (
    Account,
    Activity,
    Delivery,
    Follower,
    Interaction,
    MastodonStatus,
    Post,
)
from service.reporting.queries import epoch_bucket, follower_history, interactions_by_post

REACH_ACTIVITY_TYPES = ("Create",)


@dataclass(frozen=True, slots=True)
class MastodonCounts:
    favourites: int = 0
    reblogs: int = 0
    replies: int = 0
    statuses: int = 0
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PostAnalytics:
    post_id: int
    object_uri: str
    title: str | None
    url: str | None
    published_at: datetime | None
    deliveries_accepted: int
    deliveries_total: int
    servers_reached: int
    followers_reached: int
    likes: int
    boosts: int
    replies: int
    mastodon: MastodonCounts = field(default_factory=MastodonCounts)

    @property
    def combined(self) -> dict[str, int]:
        return {
            "likes": self.likes + self.mastodon.favourites,
            "boosts": self.boosts + self.mastodon.reblogs,
            "replies": self.replies + self.mastodon.replies,
        }

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["published_at"] = _iso(self.published_at)
        body["mastodon"]["fetched_at"] = _iso(self.mastodon.fetched_at)
        body["combined"] = self.combined
        return body


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _reach_deliveries(post_ids: Sequence[int]) -> Any:
    return (
        select(Activity.post_id, Delivery.inbox, Delivery.host, Delivery.state)
        .join(Activity, Activity.id == Delivery.activity_id)
        .where(
            Activity.post_id.in_(post_ids),
            Activity.activity_type.in_(REACH_ACTIVITY_TYPES),
            Delivery.mastodon_target_id.is_(None),
        )
    )


async def _followers_reached(
    session: AsyncSession,
    account_ids: set[int],
    inboxes_by_post: dict[int, set[str]],
    account_of_post: dict[int, int],
) -> dict[int, int]:
    """Followers whose inbox or shared inbox is among the post's delivered inboxes."""
    result: dict[int, int] = {}
    if not account_ids:
        return result
    rows = await session.execute(
        select(Follower.account_id, Follower.inbox, Follower.shared_inbox).where(
            Follower.account_id.in_(account_ids), Follower.state == "accepted"
        )
    )
    followers: dict[int, list[tuple[str, str | None]]] = {}
    for account_id, inbox, shared in rows:
        followers.setdefault(account_id, []).append((inbox, shared))
    for post_id, delivered in inboxes_by_post.items():
        result[post_id] = sum(
            1
            for inbox, shared in followers.get(account_of_post[post_id], [])
            if inbox in delivered or (shared is not None and shared in delivered)
        )
    return result


async def _mastodon_counts(
    session: AsyncSession, post_ids: Sequence[int]
) -> dict[int, MastodonCounts]:
    rows = await session.execute(
        select(
            MastodonStatus.post_id,
            func.coalesce(func.sum(MastodonStatus.favourites_count), 0),
            func.coalesce(func.sum(MastodonStatus.reblogs_count), 0),
            func.coalesce(func.sum(MastodonStatus.replies_count), 0),
            func.count(MastodonStatus.status_id),
            func.max(MastodonStatus.counts_fetched_at),
        )
        .where(MastodonStatus.post_id.in_(post_ids))
        .group_by(MastodonStatus.post_id)
    )
    return {
        post_id: MastodonCounts(int(fav or 0), int(reb or 0), int(rep or 0), int(statuses), fetched)
        for post_id, fav, reb, rep, statuses, fetched in rows
    }


async def posts_analytics(session: AsyncSession, posts: Sequence[Post]) -> list[PostAnalytics]:
    if not posts:
        return []
    post_ids = [post.id for post in posts]
    account_of_post = {post.id: post.account_id for post in posts}
    delivered_inboxes: dict[int, set[str]] = {post_id: set() for post_id in post_ids}
    delivered_hosts: dict[int, set[str]] = {post_id: set() for post_id in post_ids}
    totals: dict[int, int] = dict.fromkeys(post_ids, 0)
    for post_id, inbox, host, state in await session.execute(_reach_deliveries(post_ids)):
        totals[post_id] += 1
        if state == "delivered":
            delivered_inboxes[post_id].add(inbox)
            delivered_hosts[post_id].add(host)
    reached = await _followers_reached(
        session, set(account_of_post.values()), delivered_inboxes, account_of_post
    )
    interactions = await interactions_by_post(session, post_ids)
    mastodon = await _mastodon_counts(session, post_ids)
    results = []
    for post in posts:
        kinds = interactions.get(post.id, {})
        title = post.document.get("name")
        results.append(
            PostAnalytics(
                post_id=post.id,
                object_uri=post.object_uri,
                title=title if isinstance(title, str) else None,
                url=post.canonical_url,
                published_at=post.published_at,
                deliveries_accepted=len(delivered_inboxes[post.id]),
                deliveries_total=totals[post.id],
                servers_reached=len(delivered_hosts[post.id]),
                followers_reached=reached.get(post.id, 0),
                likes=kinds.get("like", 0),
                boosts=kinds.get("boost", 0),
                replies=kinds.get("reply", 0),
                mastodon=mastodon.get(post.id, MastodonCounts()),
            )
        )
    return results


async def post_analytics(session: AsyncSession, post: Post) -> PostAnalytics:
    return (await posts_analytics(session, [post]))[0]


async def account_posts_analytics(
    session: AsyncSession, account: Account, *, since: datetime, until: datetime, limit: int = 500
) -> list[PostAnalytics]:
    posts = (
        await session.execute(
            select(Post)
            .where(
                Post.account_id == account.id,
                Post.published_at.is_not(None),
                Post.published_at >= since,
                Post.published_at < until,
            )
            .order_by(Post.published_at.desc(), Post.id.desc())
            .limit(limit)
        )
    ).scalars()
    return await posts_analytics(session, list(posts))


def _day(seconds: Any) -> date:
    return datetime.fromtimestamp(int(seconds), UTC).date()


async def _daily_counts(
    session: AsyncSession, column: Any, where: Sequence[ColumnElement[bool]], group: Any = None
) -> dict[date, dict[str, int]]:
    bucket = epoch_bucket(session, column, 86400).label("day")
    columns: list[Any] = [bucket, func.count()]
    if group is not None:
        columns.insert(1, group)
    statement = (
        select(*columns).where(*where).group_by(bucket, *([group] if group is not None else []))
    )
    result: dict[date, dict[str, int]] = {}
    for row in await session.execute(statement):
        # Added up rather than assigned: on SQLite the bucket expression divides as a
        # decimal, so one day may come back as several rows.
        name, count = ("count", row[1]) if group is None else (str(row[1]), row[2])
        figures = result.setdefault(_day(row[0]), {})
        figures[name] = figures.get(name, 0) + int(count)
    return result


@dataclass(frozen=True, slots=True)
class AccountAnalytics:
    handle: str
    since: date
    until: date
    followers: int
    posts: int
    totals: dict[str, int]
    days: list[dict[str, Any]]
    followers_by_server: list[dict[str, Any]]
    top_servers: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["since"] = self.since.isoformat()
        body["until"] = self.until.isoformat()
        return body


async def account_analytics(
    session: AsyncSession,
    account: Account,
    *,
    days: int = 30,
    now: datetime | None = None,
    top: int = 10,
) -> AccountAnalytics:
    """Per UTC day over the last `days` days: posts, deliveries accepted, followers reached
    and interactions; new followers and the follower total; followers by server; the servers
    that engaged most."""
    now = now or datetime.now(UTC)
    first_day = (now - timedelta(days=days - 1)).date()
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    posts = await account_posts_analytics(
        session, account, since=start, until=now + timedelta(seconds=1)
    )
    per_day: dict[date, dict[str, int]] = {}
    for item in posts:
        if item.published_at is None:
            continue
        bucket = per_day.setdefault(item.published_at.date(), {})
        for name, value in (
            ("posts", 1),
            ("deliveries_accepted", item.deliveries_accepted),
            ("followers_reached", item.followers_reached),
            ("mastodon_favourites", item.mastodon.favourites),
            ("mastodon_reblogs", item.mastodon.reblogs),
            ("mastodon_replies", item.mastodon.replies),
        ):
            bucket[name] = bucket.get(name, 0) + value
    interactions = await _daily_counts(
        session,
        Interaction.created_at,
        [
            Interaction.account_id == account.id,
            Interaction.created_at >= start,
            Interaction.undone_at.is_(None),
        ],
        Interaction.kind,
    )
    new_followers = await _daily_counts(
        session,
        Follower.created_at,
        [
            Follower.account_id == account.id,
            Follower.state == "accepted",
            Follower.created_at >= start,
        ],
    )
    totals_by_day = {
        entry.day: entry.value
        for entry in await follower_history(
            session, handle=account.handle, days=days, today=now.date()
        )
    }
    series: list[dict[str, Any]] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        figures = per_day.get(day, {})
        kinds = interactions.get(day, {})
        series.append(
            {
                "day": day.isoformat(),
                "posts": figures.get("posts", 0),
                "deliveries_accepted": figures.get("deliveries_accepted", 0),
                "followers_reached": figures.get("followers_reached", 0),
                "likes": kinds.get("like", 0),
                "boosts": kinds.get("boost", 0),
                "replies": kinds.get("reply", 0),
                "mastodon_favourites": figures.get("mastodon_favourites", 0),
                "mastodon_reblogs": figures.get("mastodon_reblogs", 0),
                "mastodon_replies": figures.get("mastodon_replies", 0),
                "new_followers": new_followers.get(day, {}).get("count", 0),
                "followers_total": totals_by_day.get(day),
            }
        )
    totals = {
        name: sum(int(entry[name]) for entry in series)
        for name in (
            "posts", "deliveries_accepted", "followers_reached", "likes", "boosts", "replies",
            "mastodon_favourites", "mastodon_reblogs", "mastodon_replies", "new_followers",
        )
    }  # fmt: skip
    totals["combined_likes"] = totals["likes"] + totals["mastodon_favourites"]
    totals["combined_boosts"] = totals["boosts"] + totals["mastodon_reblogs"]
    totals["combined_replies"] = totals["replies"] + totals["mastodon_replies"]
    return AccountAnalytics(
        handle=account.handle,
        since=first_day,
        until=now.date(),
        followers=await _follower_total(session, account),
        posts=totals["posts"],
        totals=totals,
        days=series,
        followers_by_server=await followers_by_server(session, account),
        top_servers=await top_servers(session, account, since=start, limit=top),
    )


async def _follower_total(session: AsyncSession, account: Account) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Follower.account_id == account.id, Follower.state == "accepted"
            )
        )
        or 0
    )


async def followers_by_server(
    session: AsyncSession, account: Account, *, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Follower.host, func.count())
        .where(Follower.account_id == account.id, Follower.state == "accepted")
        .group_by(Follower.host)
        .order_by(func.count().desc(), Follower.host)
        .limit(limit)
    )
    return [{"server": host, "followers": int(count)} for host, count in rows]


def _actor_server(actor_uri: str) -> str:
    rest = actor_uri.split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


async def top_servers(
    session: AsyncSession, account: Account, *, since: datetime, limit: int = 10
) -> list[dict[str, Any]]:
    """Servers ranked by interactions with the account's posts since `since`, then by
    followers; each with its followers, likes, boosts and replies."""
    by_server: dict[str, dict[str, int]] = {}
    for entry in await followers_by_server(session, account, limit=10_000):
        by_server[entry["server"]] = {"followers": entry["followers"]}
    rows = await session.execute(
        select(Interaction.actor_uri, Interaction.kind).where(
            Interaction.account_id == account.id,
            Interaction.created_at >= since,
            Interaction.undone_at.is_(None),
        )
    )
    for actor_uri, kind in rows:
        figures = by_server.setdefault(_actor_server(actor_uri), {"followers": 0})
        key = {"like": "likes", "boost": "boosts", "reply": "replies"}.get(kind, kind)
        figures[key] = figures.get(key, 0) + 1
    ranked: list[dict[str, Any]] = []
    for server, figures in by_server.items():
        interactions = (
            figures.get("likes", 0) + figures.get("boosts", 0) + figures.get("replies", 0)
        )
        ranked.append(
            {
                "server": server,
                "followers": figures.get("followers", 0),
                "likes": figures.get("likes", 0),
                "boosts": figures.get("boosts", 0),
                "replies": figures.get("replies", 0),
                "interactions": interactions,
            }
        )
    ranked.sort(key=lambda entry: (-entry["interactions"], -entry["followers"], entry["server"]))
    return ranked[:limit]


POST_CSV_COLUMNS = (
    "post_id", "object_uri", "title", "url", "published_at", "deliveries_accepted",
    "deliveries_total", "servers_reached", "followers_reached", "likes", "boosts", "replies",
    "mastodon_favourites", "mastodon_reblogs", "mastodon_replies", "combined_likes",
    "combined_boosts", "combined_replies",
)  # fmt: skip


def posts_csv(items: Sequence[PostAnalytics]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(POST_CSV_COLUMNS)
    for item in items:
        combined = item.combined
        writer.writerow(
            [
                item.post_id, item.object_uri, _csv_safe(item.title or ""), item.url or "",
                _iso(item.published_at) or "", item.deliveries_accepted, item.deliveries_total,
                item.servers_reached, item.followers_reached, item.likes, item.boosts,
                item.replies, item.mastodon.favourites, item.mastodon.reblogs,
                item.mastodon.replies, combined["likes"], combined["boosts"], combined["replies"],
            ]
        )  # fmt: skip
    return buffer.getvalue()


def days_csv(analytics: AccountAnalytics) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(analytics.days[0]) if analytics.days else ["day"]
    writer.writerow(columns)
    for entry in analytics.days:
        writer.writerow(["" if entry[name] is None else entry[name] for name in columns])
    return buffer.getvalue()


def _csv_safe(text: str) -> str:
    # Spreadsheets run cells starting with these as formulas; a post title must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def dashboard_summary(
    session: AsyncSession, account: Account, *, days: int = 30
) -> dict[str, Any]:
    """What the ops dashboard shows per account: totals, the daily series, the top posts by
    combined interactions and the top servers."""
    analytics = await account_analytics(session, account, days=days)
    now = datetime.now(UTC)
    posts = await account_posts_analytics(
        session, account, since=now - timedelta(days=days), until=now + timedelta(seconds=1)
    )
    posts.sort(key=lambda item: -sum(item.combined.values()))
    return {
        "account": account.handle,
        "followers": analytics.followers,
        "totals": analytics.totals,
        "days": analytics.days,
        "top_posts": [item.as_json() for item in posts[:5]],
        "top_servers": analytics.top_servers,
    }
