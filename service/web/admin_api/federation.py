"""Admin API for the federation side: followers and follow requests, interactions per
post, follower history, blocked domains, and what the inbox received."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from federation.activitypub.inbox_activities import domain_is_blocked
from service.accounts.store import AccountStore
from service.community.backfill import backfill_new_follower
from service.community.follow_answers import answer_follow
from service.db.models import (
    Account,
    BlockedDomain,
    Follower,
    FollowerSnapshot,
    InboxActivity,
    Interaction,
    Post,
)
from service.inbox.endpoint_state import runtime_of
from service.publishing.activity_records import enqueue_deliveries
from service.web.dependencies import MAX_ROW_ID, AdminDep, QueueDep, RowId, SessionDep, UrlsDep
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin", tags=["admin: federation"], dependencies=[AdminDep])

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


async def _account(session: SessionDep, handle: str) -> Account:
    account = await AccountStore(session).find(handle.lower())
    if account is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    return account


def _follower_view(follower: Follower) -> dict[str, Any]:
    return {
        "id": follower.id,
        "actor_uri": follower.actor_uri,
        "host": follower.host,
        "inbox": follower.inbox,
        "shared_inbox": follower.shared_inbox,
        "state": follower.state,
        "follow_activity_id": follower.follow_activity_id,
        "created_at": follower.created_at,
    }


# -- followers and follow requests ----------------------------------------------------------


@router.get("/accounts/{handle}/followers")
async def list_followers(
    handle: str,
    session: SessionDep,
    state: Annotated[str, Query(pattern="^(accepted|pending)$")] = "accepted",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> dict[str, Any]:
    account = await _account(session, handle)
    conditions = (Follower.account_id == account.id, Follower.state == state)
    total = int(await session.scalar(select(func.count(Follower.id)).where(*conditions)) or 0)
    rows = (
        await session.execute(
            select(Follower)
            .where(*conditions)
            .order_by(Follower.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).scalars()
    return {"total": total, "state": state, "items": [_follower_view(row) for row in rows]}


async def _follower(session: SessionDep, account: Account, follower_id: RowId) -> Follower:
    follower = await session.get(Follower, follower_id)
    if follower is None or follower.account_id != account.id:
        raise Problem(404, "No such follower", type_="unknown-follower")
    return follower


@router.post("/accounts/{handle}/followers/{follower_id}/approve")
async def approve_follower(
    handle: str, follower_id: RowId, session: SessionDep, urls: UrlsDep, queue: QueueDep
) -> dict[str, Any]:
    account = await _account(session, handle)
    follower = await _follower(session, account, follower_id)
    if follower.state != "pending":
        raise Problem(409, "This follow request is not pending", type_="not-pending")
    follower.state = "accepted"
    published = await answer_follow(session, account, follower, "Accept", urls)
    backfill = await backfill_new_follower(session, account, follower, urls)
    await session.commit()
    await enqueue_deliveries(queue, [published, *backfill])
    return _follower_view(follower)


@router.post("/accounts/{handle}/followers/{follower_id}/reject")
async def reject_follower(
    handle: str, follower_id: RowId, session: SessionDep, urls: UrlsDep, queue: QueueDep
) -> dict[str, Any]:
    """Refuse a pending request, or remove an accepted follower (both send a Reject)."""
    account = await _account(session, handle)
    follower = await _follower(session, account, follower_id)
    view = _follower_view(follower)
    published = await answer_follow(session, account, follower, "Reject", urls)
    await session.delete(follower)
    await session.commit()
    await enqueue_deliveries(queue, [published])
    return {**view, "state": "rejected"}


# -- interactions and history ---------------------------------------------------------------


@router.get("/posts/{post_id}/interactions")
async def post_interactions(
    post_id: RowId,
    session: SessionDep,
    include_undone: bool = False,
) -> dict[str, Any]:
    post = await session.get(Post, post_id)
    if post is None:
        raise Problem(404, "No such post", type_="unknown-post")
    query = select(Interaction).where(Interaction.post_id == post.id)
    if not include_undone:
        query = query.where(Interaction.undone_at.is_(None))
    rows = (await session.execute(query.order_by(Interaction.created_at, Interaction.id))).scalars()
    grouped: dict[str, list[dict[str, Any]]] = {"like": [], "boost": [], "reply": []}
    for row in rows:
        entry: dict[str, Any] = {"actor_uri": row.actor_uri, "at": row.created_at}
        if row.kind == "reply":
            entry.update(url=row.url, content_html=row.content_html, id=row.activity_uri)
        if row.undone_at is not None:
            entry["undone_at"] = row.undone_at
        grouped.setdefault(row.kind, []).append(entry)
    active = {
        kind: sum(1 for e in items if "undone_at" not in e) for kind, items in grouped.items()
    }
    return {
        "post_id": post.id,
        "object_uri": post.object_uri,
        "counts": {"likes": active["like"], "boosts": active["boost"], "replies": active["reply"]},
        "likes": grouped["like"],
        "boosts": grouped["boost"],
        "replies": grouped["reply"],
    }


@router.get("/accounts/{handle}/follower-history")
async def follower_history(
    handle: str,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=3660)] = 90,
) -> dict[str, Any]:
    account = await _account(session, handle)
    since: date = datetime.now(UTC).date() - timedelta(days=days - 1)
    rows = (
        await session.execute(
            select(FollowerSnapshot.day, FollowerSnapshot.followers)
            .where(FollowerSnapshot.account_id == account.id, FollowerSnapshot.day >= since)
            .order_by(FollowerSnapshot.day)
        )
    ).all()
    current = await AccountStore(session).follower_count(account)
    pending = int(
        await session.scalar(
            select(func.count(Follower.id)).where(
                Follower.account_id == account.id, Follower.state == "pending"
            )
        )
        or 0
    )
    return {
        "handle": account.handle,
        "current": current,
        "pending": pending,
        "history": [{"day": day.isoformat(), "followers": count} for day, count in rows],
    }


# -- blocked domains ------------------------------------------------------------------------


class BlockedDomainCreate(BaseModel):
    domain: str = Field(description="Domain to block; its subdomains are blocked too.")
    reason: str | None = Field(None, max_length=2000)

    @field_validator("domain")
    @classmethod
    def _normalise(cls, value: str) -> str:
        domain = value.strip().lower().rstrip(".")
        if "://" in domain:
            domain = urlsplit(domain).hostname or ""
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise ValueError("not a domain name") from error
        if not _DOMAIN.match(domain):
            raise ValueError("not a domain name")
        return domain


def _blocked_view(row: BlockedDomain) -> dict[str, Any]:
    return {"domain": row.domain, "reason": row.reason, "created_at": row.created_at}


@router.get("/blocked-domains")
async def list_blocked_domains(session: SessionDep) -> dict[str, Any]:
    rows = (await session.execute(select(BlockedDomain).order_by(BlockedDomain.domain))).scalars()
    return {"items": [_blocked_view(row) for row in rows]}


@router.post("/blocked-domains", status_code=201)
async def block_domain(
    body: BlockedDomainCreate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Block a domain: its requests are refused from now on and its followers removed."""
    row = BlockedDomain(domain=body.domain, reason=body.reason, created_at=datetime.now(UTC))
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as error:
        raise Problem(409, f"{body.domain} is already blocked", type_="already-blocked") from error
    followers = (await session.execute(select(Follower.id, Follower.host))).all()
    blocked = frozenset({body.domain})
    doomed = [
        follower_id
        for follower_id, host in followers
        if domain_is_blocked(urlsplit(f"//{host}").hostname or host, blocked)
    ]
    if doomed:
        await session.execute(delete(Follower).where(Follower.id.in_(doomed)))
    await session.commit()
    runtime_of(request).blocked_domains.invalidate()
    return {**_blocked_view(row), "followers_removed": len(doomed)}


@router.get("/blocked-domains/{domain}")
async def get_blocked_domain(domain: str, session: SessionDep) -> dict[str, Any]:
    row = await session.get(BlockedDomain, domain.lower())
    if row is None:
        raise Problem(404, f"{domain} is not blocked", type_="not-blocked")
    return _blocked_view(row)


@router.delete("/blocked-domains/{domain}", status_code=204, response_class=Response)
async def unblock_domain(domain: str, request: Request, session: SessionDep) -> Response:
    row = await session.get(BlockedDomain, domain.lower())
    if row is None:
        raise Problem(404, f"{domain} is not blocked", type_="not-blocked")
    await session.delete(row)
    await session.commit()
    runtime_of(request).blocked_domains.invalidate()
    return Response(status_code=204)


# -- inbox ----------------------------------------------------------------------------------


@router.get("/inbox/stats")
async def inbox_stats(session: SessionDep) -> dict[str, Any]:
    """Received activities by state, and the ignored ones by type (what the relay does not
    handle, and how often)."""
    by_state = (
        await session.execute(
            select(InboxActivity.state, func.count(InboxActivity.id)).group_by(InboxActivity.state)
        )
    ).all()
    ignored = (
        await session.execute(
            select(InboxActivity.activity_type, func.count(InboxActivity.id))
            .where(InboxActivity.state == "ignored")
            .group_by(InboxActivity.activity_type)
        )
    ).all()
    return {
        "by_state": {state: int(count) for state, count in by_state},
        "ignored_by_type": {kind: int(count) for kind, count in ignored},
    }
