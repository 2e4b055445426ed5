"""Admin API for polled feeds: subscribe a CMS's RSS/Atom feed, list, poll now, remove."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from federation.timestamps import format_timestamp
from service.db.models import Account, FeedSubscription
from service.dependencies import AdminDep, RowId, SessionDep, SettingsDep
from service.feed_polling import FeedFetcher, FeedFetchError, FeedPoller
from service.problems import Problem

router = APIRouter(prefix="/api/admin/feeds", tags=["admin: feeds"], dependencies=[AdminDep])


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


async def _subscription(session: SessionDep, subscription_id: RowId) -> FeedSubscription:
    subscription = await session.get(FeedSubscription, subscription_id)
    if subscription is None:
        raise Problem(404, f"No feed subscription {subscription_id}", type_="unknown-feed")
    return subscription


@router.get("")
async def list_feeds(session: SessionDep) -> list[dict[str, Any]]:
    rows = await session.execute(select(FeedSubscription).order_by(FeedSubscription.id))
    return [feed_view(row) for row in rows.scalars()]


@router.post("", status_code=201)
async def add_feed(
    body: FeedSubscriptionCreate, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    fetcher = FeedFetcher(settings)
    try:
        fetcher.check(body.url)
    except FeedFetchError as error:
        raise Problem(422, f"url: {error.detail}", type_="forbidden-url") from error
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
            raise Problem(422, f"No account {', '.join(missing)}", type_="unknown-account")
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
        raise Problem(409, "That feed is already subscribed", type_="feed-exists") from error
    return feed_view(subscription)


@router.get("/{subscription_id}")
async def get_feed(subscription_id: RowId, session: SessionDep) -> dict[str, Any]:
    return feed_view(await _subscription(session, subscription_id))


@router.delete("/{subscription_id}", status_code=204, response_class=Response)
async def remove_feed(subscription_id: RowId, session: SessionDep) -> Response:
    await session.delete(await _subscription(session, subscription_id))
    return Response(status_code=204)


@router.post("/{subscription_id}/poll")
async def poll_feed(
    subscription_id: RowId, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Poll at once instead of waiting for the schedule."""
    await _subscription(session, subscription_id)
    await session.commit()
    state = request.app.state
    poller = FeedPoller(state.settings, state.database, state.urls, state.queue)
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
