"""Every object and activity the relay published, dereferenceable at its id.

ActivityPub clients get the stored document, the same JSON it was delivered with. A
browser is redirected to the post's canonical URL when it has one, or gets a small page.
A deleted post answers 410 with a Tombstone (and so do activities about it, except its
Delete); a post not yet published does not exist (404).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from federation.activitypub.collections import tombstone
from service.db.models import Account, Activity, Post
from service.inbox.authorized_fetch import SignedFetchDep
from service.web.dependencies import SessionDep, UrlsDep
from service.web.negotiation import wants_activity_json
from service.web.page_templates import templates
from service.web.problems import Problem
from service.web.responses import ActivityJSONResponse

router = APIRouter(tags=["federation"], dependencies=[SignedFetchDep])

_VARY = {"Vary": "Accept"}
_PAGE_CSP = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:"
}
_UNPUBLISHED = ("scheduled", "cancelled")


def _canonical_url(post: Post) -> str | None:
    if post.canonical_url:
        return post.canonical_url
    url = post.document.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    return None


def _post_view(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": document.get("name"),
        "summary": document.get("summary"),
        "content": document.get("content", ""),
        "published": document.get("published", ""),
    }


async def _profile_url(session: SessionDep, urls: UrlsDep, account_id: int) -> str | None:
    handle = await session.scalar(select(Account.handle).where(Account.id == account_id))
    return urls.account(handle).profile_page if handle else None


def _gone(request: Request, object_id: str, former_type: str, post: Post) -> Response:
    if wants_activity_json(request):
        return ActivityJSONResponse(
            tombstone(object_id, former_type, post.deleted_at), status_code=410, headers=_VARY
        )
    return templates.TemplateResponse(
        request,
        "object.html",
        {"post": None, "object_id": object_id, "profile_url": None},
        status_code=410,
        headers={**_VARY, **_PAGE_CSP},
    )


@router.get("/objects/{object_uuid}", response_model=None)
async def published_object(
    object_uuid: str, request: Request, session: SessionDep, urls: UrlsDep
) -> Response:
    object_id = urls.object(object_uuid)
    post = (
        await session.execute(select(Post).where(Post.object_uri == object_id))
    ).scalar_one_or_none()
    if post is None or post.state in _UNPUBLISHED:
        raise Problem(404, "No such object", type_="unknown-object")
    if post.state == "deleted":
        return _gone(request, object_id, post.object_type, post)
    if wants_activity_json(request):
        return ActivityJSONResponse(post.document, headers=_VARY)
    canonical = _canonical_url(post)
    if canonical is not None:
        return RedirectResponse(canonical, status_code=303, headers=_VARY)
    return templates.TemplateResponse(
        request,
        "object.html",
        {
            "post": _post_view(post.document),
            "object_id": object_id,
            "profile_url": await _profile_url(session, urls, post.account_id),
        },
        headers={**_VARY, **_PAGE_CSP},
    )


@router.get("/activities/{activity_uuid}", response_model=None)
async def published_activity(
    activity_uuid: str, request: Request, session: SessionDep, urls: UrlsDep
) -> Response:
    activity_id = urls.activity(activity_uuid)
    activity = (
        await session.execute(select(Activity).where(Activity.activity_uri == activity_id))
    ).scalar_one_or_none()
    if activity is None:
        raise Problem(404, "No such activity", type_="unknown-activity")
    post = await session.get(Post, activity.post_id) if activity.post_id is not None else None
    if post is not None and post.state in _UNPUBLISHED:
        raise Problem(404, "No such activity", type_="unknown-activity")
    if post is not None and post.state == "deleted" and activity.activity_type != "Delete":
        return _gone(request, activity_id, activity.activity_type, post)
    if wants_activity_json(request):
        return ActivityJSONResponse(activity.document, headers=_VARY)
    target = (post and post.state == "published" and _canonical_url(post)) or await _profile_url(
        session, urls, activity.account_id
    )
    if target is None:
        raise Problem(404, "No such activity", type_="unknown-activity")
    return RedirectResponse(target, status_code=303, headers=_VARY)
