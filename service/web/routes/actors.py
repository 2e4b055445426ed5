"""Actor documents for fediverse servers and the public profile page for browsers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from federation.activitypub.instance_actor import build_instance_actor
from service.accounts.actor_profiles import actor_document
from service.accounts.instance_actor import instance_key
from service.accounts.store import AccountStore
from service.db.models import Account, Post
from service.web.dependencies import SessionDep, SettingsDep, UrlsDep
from service.web.negotiation import wants_activity_json
from service.web.page_templates import templates
from service.web.problems import Problem
from service.web.responses import ActivityJSONResponse

router = APIRouter(tags=["actors"])

PROFILE_POSTS = 20
# Public pages: inline styles only, images from anywhere (avatars, post images), no scripts.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:"


async def load_account(session: SessionDep, handle: str) -> Account:
    account = await AccountStore(session).find(handle.lower())
    if account is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    return account


def post_view(document: dict[str, Any]) -> dict[str, Any]:
    content_map = document.get("contentMap") or {}
    return {
        "name": document.get("name"),
        "summary": document.get("summary"),
        "content": document.get("content", ""),
        "url": document.get("url") if isinstance(document.get("url"), str) else None,
        "published": document.get("published", ""),
        "language": next(iter(content_map), None),
    }


@router.get("/actor", response_model=None)
async def instance_actor(request: Request, settings: SettingsDep, urls: UrlsDep) -> Response:
    """The relay's own actor. Always served unsigned: servers fetch it to verify our signed
    GETs, so requiring a signature here would deadlock authorized fetch on both sides."""
    key = await instance_key(request.app.state.database)
    return ActivityJSONResponse(
        build_instance_actor(urls, settings.effective_domain, key.public_pem)
    )


@router.get("/users/{handle}", response_model=None)
async def actor(handle: str, request: Request, session: SessionDep, urls: UrlsDep) -> Response:
    account = await load_account(session, handle)
    if wants_activity_json(request):
        return ActivityJSONResponse(actor_document(account, urls))
    return RedirectResponse(urls.account(account.handle).profile_page, status_code=303)


@router.get("/@{handle}", response_model=None)
async def profile_page(
    handle: str, request: Request, session: SessionDep, settings: SettingsDep, urls: UrlsDep
) -> Response:
    account = await load_account(session, handle)
    if wants_activity_json(request):
        return ActivityJSONResponse(actor_document(account, urls))
    posts = (
        await session.execute(
            select(Post.document)
            .where(Post.account_id == account.id, Post.state == "published")
            .order_by(Post.published_at.desc(), Post.id.desc())
            .limit(PROFILE_POSTS)
        )
    ).scalars()
    followers = await AccountStore(session).follower_count(account)
    return templates.TemplateResponse(
        request,
        "profile.html",
        {
            "account": account,
            "domain": settings.effective_domain,
            "urls": urls.account(account.handle),
            "posts": [post_view(document) for document in posts],
            "followers": followers,
        },
        headers={"Content-Security-Policy": PAGE_CSP},
    )
