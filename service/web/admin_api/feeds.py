"""Admin API for polled feeds: subscribe a CMS's RSS/Atom feed, list, poll now, remove.

The work is done in `service.polling.feed_subscriptions`, shared with `fedirelay feeds`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service.polling.feed_subscriptions import (
    FeedExists,
    FeedNotFound,
    FeedSubscriptionCreate,
    FeedUrlRefused,
    UnknownFeedAccounts,
    add_subscription,
    feed_view,
    get_subscription,
    list_subscriptions,
    poll_subscription,
    remove_subscription,
)
from service.web.dependencies import AdminDep, RowId, SessionDep, SettingsDep
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin/feeds", tags=["admin: feeds"], dependencies=[AdminDep])


def _unknown(error: FeedNotFound) -> Problem:
    return Problem(404, str(error), type_="unknown-feed")


@router.get("")
async def list_feeds(session: SessionDep) -> list[dict[str, Any]]:
    return [feed_view(row) for row in await list_subscriptions(session)]


@router.post("", status_code=201)
async def add_feed(
    body: FeedSubscriptionCreate, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    try:
        subscription = await add_subscription(session, settings, body)
    except FeedUrlRefused as error:
        raise Problem(422, str(error), type_="forbidden-url") from error
    except UnknownFeedAccounts as error:
        raise Problem(422, str(error), type_="unknown-account") from error
    except FeedExists as error:
        raise Problem(409, str(error), type_="feed-exists") from error
    return feed_view(subscription)


@router.get("/{subscription_id}")
async def get_feed(subscription_id: RowId, session: SessionDep) -> dict[str, Any]:
    try:
        return feed_view(await get_subscription(session, subscription_id))
    except FeedNotFound as error:
        raise _unknown(error) from error


@router.delete("/{subscription_id}", status_code=204, response_class=Response)
async def remove_feed(subscription_id: RowId, session: SessionDep) -> Response:
    try:
        await remove_subscription(session, subscription_id)
    except FeedNotFound as error:
        raise _unknown(error) from error
    return Response(status_code=204)


@router.post("/{subscription_id}/poll")
async def poll_feed(subscription_id: RowId, request: Request) -> dict[str, Any]:
    """Poll at once instead of waiting for the schedule."""
    state = request.app.state
    try:
        return await poll_subscription(
            state.settings, state.database, state.urls, state.queue, subscription_id
        )
    except FeedNotFound as error:
        raise _unknown(error) from error
