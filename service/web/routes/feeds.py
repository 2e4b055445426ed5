"""RSS and Atom feeds of every account's published posts: `/@{handle}.rss`, `/@{handle}.atom`.

Registered before the profile page route, whose `/@{handle}` pattern would otherwise take
`demo.rss` for a handle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from federation.activitypub.timestamps import parse_timestamp
from federation.activitypub.urls import InstanceUrls
from federation.rendering.account_feeds import (
    ATOM_MEDIA_TYPE,
    RSS_MEDIA_TYPE,
    FeedChannel,
    FeedItem,
    build_atom,
    build_rss,
)
from federation.rendering.html_sanitizer import html_to_text
from service.accounts.store import AccountStore
from service.db.models import Account, Post
from service.web.dependencies import SessionDep, SettingsDep, UrlsDep
from service.web.problems import Problem

router = APIRouter(tags=["feeds"])

FEED_ITEMS = 50


def _moment(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return fallback
    return fallback


def _tags(document: dict[str, Any]) -> tuple[str, ...]:
    tags = document.get("tag")
    if not isinstance(tags, list):
        return ()
    return tuple(
        str(tag["name"]).lstrip("#")
        for tag in tags
        if isinstance(tag, dict) and tag.get("type") == "Hashtag" and tag.get("name")
    )


def feed_item(post: Post) -> FeedItem:
    document = post.document
    published = post.published_at or post.created_at
    url = document.get("url")
    summary = document.get("summary")
    return FeedItem(
        item_id=post.object_uri,
        url=url if isinstance(url, str) else (post.canonical_url or post.object_uri),
        title=document.get("name") if isinstance(document.get("name"), str) else None,
        content_html=str(document.get("content") or ""),
        published=_moment(document.get("published"), published),
        updated=post.edited_at,
        summary=html_to_text(summary) if isinstance(summary, str) and summary else None,
        tags=_tags(document),
    )


async def _channel(
    session: SessionDep, handle: str, urls: InstanceUrls, domain: str, kind: str
) -> FeedChannel:
    account = await AccountStore(session).find(handle.lower())
    if account is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    posts = (
        await session.execute(
            select(Post)
            .where(Post.account_id == account.id, Post.state == "published")
            .order_by(Post.published_at.desc(), Post.id.desc())
            .limit(FEED_ITEMS)
        )
    ).scalars()
    actor_urls = urls.account(account.handle)
    return FeedChannel(
        title=account.display_name or account.handle,
        description=html_to_text(account.summary) or f"Posts of @{account.handle}@{domain}",
        page_url=actor_urls.profile_page,
        feed_url=actor_urls.rss_feed if kind == "rss" else actor_urls.atom_feed,
        author=_author(account, domain),
        language=account.language,
        icon_url=account.avatar_url,
        items=[feed_item(post) for post in posts],
    )


def _author(account: Account, domain: str) -> str:
    return f"{account.display_name or account.handle} (@{account.handle}@{domain})"


def _feed_response(body: bytes, media_type: str) -> Response:
    return Response(
        body,
        media_type=f"{media_type}; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/@{handle}.rss", response_class=Response)
async def rss_feed(
    handle: str, session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> Response:
    channel = await _channel(session, handle, urls, settings.effective_domain, "rss")
    return _feed_response(build_rss(channel), RSS_MEDIA_TYPE)


@router.get("/@{handle}.atom", response_class=Response)
async def atom_feed(
    handle: str, session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> Response:
    channel = await _channel(session, handle, urls, settings.effective_domain, "atom")
    return _feed_response(build_atom(channel), ATOM_MEDIA_TYPE)
