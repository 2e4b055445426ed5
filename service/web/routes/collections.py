"""An account's collections: outbox, followers, following, featured.

`GET <collection>` answers the head (`totalItems`, `first`, `last`); `?page=true` the newest
page, with `max_id` / `min_id` cursors for older / newer pages. A browser is sent to the
profile page instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from federation.activitypub.collections import (
    PageItem,
    PageRequest,
    collection_page,
    embedded_item,
    inline_collection,
    ordered_collection,
    paged_collection,
    parse_cursor,
)
from service.db.models import Account, Activity, Follower, Following, Post
from service.inbox.authorized_fetch import SignedFetchDep
from service.web.dependencies import SessionDep, UrlsDep
from service.web.negotiation import wants_activity_json
from service.web.responses import ActivityJSONResponse
from service.web.routes.actors import load_account

router = APIRouter(tags=["federation"], dependencies=[SignedFetchDep])


def _page_request(request: Request) -> PageRequest | None:
    """None for the collection head; else which page."""
    params = request.query_params
    max_id = parse_cursor(params.get("max_id"))
    min_id = parse_cursor(params.get("min_id"))
    if params.get("page") is None and max_id is None and min_id is None:
        return None
    return PageRequest(max_id=max_id, min_id=min_id)


def _browser_redirect(urls: UrlsDep, account: Account) -> Response:
    return RedirectResponse(urls.account(account.handle).profile_page, status_code=303)


async def _page(
    session: AsyncSession,
    collection_id: str,
    page: PageRequest,
    cursor: InstrumentedAttribute[int],
    query: Select[Any, Any],
    conditions: Sequence[ColumnElement[bool]],
    total: int,
) -> dict[str, Any]:
    """One page of `query` (selecting (cursor, item)) ordered newest first by `cursor`."""
    if page.min_id is not None:
        rows = (
            await session.execute(
                query.where(*conditions, cursor > page.min_id)
                .order_by(cursor.asc())
                .limit(page.size)
            )
        ).all()
        rows = list(reversed(rows))
    else:
        bounded = query.where(*conditions)
        if page.max_id is not None:
            bounded = bounded.where(cursor < page.max_id)
        rows = list((await session.execute(bounded.order_by(cursor.desc()).limit(page.size))).all())
    items = [PageItem(int(row[0]), row[1]) for row in rows]
    has_older = has_newer = False
    if items:
        table_query = query.with_only_columns(cursor)
        has_older = bool(
            await session.scalar(
                select(exists(table_query.where(*conditions, cursor < items[-1].cursor)))
            )
        )
        has_newer = bool(
            await session.scalar(
                select(exists(table_query.where(*conditions, cursor > items[0].cursor)))
            )
        )
    return collection_page(
        collection_id, page, items, total=total, has_older=has_older, has_newer=has_newer
    )


def _outbox_conditions(account: Account) -> list[ColumnElement[bool]]:
    # Activities about a post that was deleted (or never went out) leave the outbox with it.
    return [
        Activity.account_id == account.id,
        Activity.in_outbox.is_(True),
        or_(Activity.post_id.is_(None), Post.state == "published"),
    ]


@router.get("/users/{handle}/outbox", response_model=None)
async def outbox(handle: str, request: Request, session: SessionDep, urls: UrlsDep) -> Response:
    account = await load_account(session, handle)
    if not wants_activity_json(request):
        return _browser_redirect(urls, account)
    collection_id = urls.account(account.handle).outbox
    conditions = _outbox_conditions(account)
    joined = select(Activity.id, Activity.document).outerjoin(Post, Activity.post_id == Post.id)
    total = int(
        await session.scalar(
            select(func.count(Activity.id))
            .select_from(Activity)
            .outerjoin(Post, Activity.post_id == Post.id)
            .where(*conditions)
        )
        or 0
    )
    page = _page_request(request)
    if page is None:
        return ActivityJSONResponse(paged_collection(collection_id, total))
    document = await _page(session, collection_id, page, Activity.id, joined, conditions, total)
    document["orderedItems"] = [embedded_item(item) for item in document["orderedItems"]]
    return ActivityJSONResponse(document)


@router.get("/users/{handle}/followers", response_model=None)
async def followers(handle: str, request: Request, session: SessionDep, urls: UrlsDep) -> Response:
    account = await load_account(session, handle)
    if not wants_activity_json(request):
        return _browser_redirect(urls, account)
    collection_id = urls.account(account.handle).followers
    conditions = [Follower.account_id == account.id, Follower.state == "accepted"]
    total = int(await session.scalar(select(func.count(Follower.id)).where(*conditions)) or 0)
    page = _page_request(request)
    if not account.show_followers:
        # The count is public; who follows is not, unless the account chose to show it.
        return ActivityJSONResponse(ordered_collection(collection_id, total))
    if page is None:
        return ActivityJSONResponse(paged_collection(collection_id, total))
    query = select(Follower.id, Follower.actor_uri)
    return ActivityJSONResponse(
        await _page(session, collection_id, page, Follower.id, query, conditions, total)
    )


@router.get("/users/{handle}/following", response_model=None)
async def following(handle: str, request: Request, session: SessionDep, urls: UrlsDep) -> Response:
    account = await load_account(session, handle)
    if not wants_activity_json(request):
        return _browser_redirect(urls, account)
    collection_id = urls.account(account.handle).following
    conditions = [Following.account_id == account.id, Following.state == "accepted"]
    total = int(await session.scalar(select(func.count(Following.id)).where(*conditions)) or 0)
    page = _page_request(request)
    if page is None:
        return ActivityJSONResponse(paged_collection(collection_id, total))
    query = select(Following.id, Following.actor_uri)
    return ActivityJSONResponse(
        await _page(session, collection_id, page, Following.id, query, conditions, total)
    )


@router.get("/users/{handle}/collections/featured", response_model=None)
async def featured(handle: str, request: Request, session: SessionDep, urls: UrlsDep) -> Response:
    account = await load_account(session, handle)
    if not wants_activity_json(request):
        return _browser_redirect(urls, account)
    documents = (
        await session.execute(
            select(Post.document)
            .where(
                Post.account_id == account.id,
                Post.state == "published",
                Post.pinned_at.is_not(None),
            )
            .order_by(Post.pinned_at.desc(), Post.id.desc())
        )
    ).scalars()
    items = [embedded_item(document) for document in documents]
    return ActivityJSONResponse(inline_collection(urls.account(account.handle).featured, items))
