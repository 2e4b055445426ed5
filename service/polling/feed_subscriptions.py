"""Managing polled feed subscriptions: list, subscribe, show, remove and poll now.

The admin API (`/api/admin/feeds`) and the command line (`fedirelay feeds`) both go through
these functions; each turns the errors below into its own answer (a problem document, or a
message and an exit code).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Account, FeedSubscription
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

# `service.polling.feeds` (and with it httpx) is imported where a feed is fetched, not here:
# the CLI imports this module for every command, `fedirelay worker` included, and httpx
# imported before the worker's logging is set up brings rich and pygments along
# (tests/workers/test_worker_footprint.py).


class FeedSubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, description="The feed's http(s) URL.")
    accounts: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Handles that publish its entries; empty means routing decides.",
    )
    interval_seconds: int | None = Field(
        None, ge=60, le=86400, description="Seconds between polls (default from settings)."
    )


class FeedSubscriptionError(Exception):
    """Why a subscription could not be found or made; `str()` is the message to show."""


class FeedNotFound(FeedSubscriptionError):
    def __init__(self, subscription_id: int) -> None:
        super().__init__(f"No feed subscription {subscription_id}")
        self.subscription_id = subscription_id


class FeedUrlRefused(FeedSubscriptionError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"url: {detail}")


class UnknownFeedAccounts(FeedSubscriptionError):
    def __init__(self, handles: list[str]) -> None:
        super().__init__(f"No account {', '.join(handles)}")
        self.handles = handles


class FeedExists(FeedSubscriptionError):
    def __init__(self) -> None:
        super().__init__("That feed is already subscribed")


def feed_view(subscription: FeedSubscription) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return format_timestamp(value) if value else None

    return {
        "id": subscription.id,
        "url": subscription.url,
        "accounts": list(subscription.accounts),
        "interval_seconds": subscription.interval_seconds,
        "last_polled_at": moment(subscription.last_polled_at),
        "next_poll_at": moment(subscription.next_poll_at),
        "last_status": subscription.last_status,
        "last_error": subscription.last_error,
    }


async def list_subscriptions(session: AsyncSession) -> list[FeedSubscription]:
    rows = await session.execute(select(FeedSubscription).order_by(FeedSubscription.id))
    return list(rows.scalars())


async def get_subscription(session: AsyncSession, subscription_id: int) -> FeedSubscription:
    subscription = await session.get(FeedSubscription, subscription_id)
    if subscription is None:
        raise FeedNotFound(subscription_id)
    return subscription


async def add_subscription(
    session: AsyncSession, settings: Settings, body: FeedSubscriptionCreate
) -> FeedSubscription:
    """Subscribe a feed; its first poll is due at once (and only records what it holds)."""
    from service.polling.feeds import FeedFetcher, FeedFetchError

    fetcher = FeedFetcher(settings)
    try:
        fetcher.check(body.url)
    except FeedFetchError as error:
        raise FeedUrlRefused(error.detail) from error
    finally:
        await fetcher.aclose()
    handles = list(dict.fromkeys(handle.lower() for handle in body.accounts))
    if handles:
        known = set(
            (
                await session.execute(select(Account.handle).where(Account.handle.in_(handles)))
            ).scalars()
        )
        missing = [handle for handle in handles if handle not in known]
        if missing:
            raise UnknownFeedAccounts(missing)
    subscription = FeedSubscription(
        url=body.url,
        accounts=handles,
        interval_seconds=body.interval_seconds or settings.feed_poll_interval_seconds,
        next_poll_at=datetime.now(UTC),
    )
    session.add(subscription)
    try:
        await session.flush()
    except IntegrityError as error:
        raise FeedExists() from error
    return subscription


async def remove_subscription(session: AsyncSession, subscription_id: int) -> None:
    await session.delete(await get_subscription(session, subscription_id))


async def poll_subscription(
    settings: Settings,
    database: Database,
    urls: InstanceUrls,
    queue: JobQueue | None,
    subscription_id: int,
) -> dict[str, Any]:
    """Poll at once instead of waiting for the schedule; what the poll found."""
    from service.polling.feeds import FeedPoller

    async with database.session() as session:
        await get_subscription(session, subscription_id)
    poller = FeedPoller(settings, database, urls, queue)
    try:
        result = await poller.poll(subscription_id)
    finally:
        await poller.aclose()
    return {
        "id": subscription_id,
        "status": result.status,
        "new": result.new,
        "changed": result.changed,
        "baseline": result.baseline,
        "error": result.error,
        "accounts": result.outcome.accounts,
    }
