"""Discovery: WebFinger, NodeInfo and host-meta, as Mastodon and directories expect them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select

from federation.activitypub.nodeinfo import (
    NODEINFO_VERSIONS,
    NodeUsage,
    build_nodeinfo,
    build_nodeinfo_links,
)
from federation.activitypub.webfinger import (
    UnresolvableResource,
    build_host_meta,
    build_webfinger,
    parse_resource,
)
from service.accounts.store import AccountStore
from service.db.models import Account, Post
from service.web.dependencies import SessionDep, SettingsDep, UrlsDep
from service.web.problems import Problem
from service.web.responses import JRDResponse

router = APIRouter(tags=["discovery"])


def software_version() -> str:
    try:
        return version("fedirelay")
    except PackageNotFoundError:
        return "0.0.0"


@router.get("/.well-known/webfinger", response_class=JRDResponse)
async def webfinger(
    session: SessionDep,
    settings: SettingsDep,
    urls: UrlsDep,
    resource: str | None = Query(None, max_length=2048),
) -> JRDResponse:
    if not resource:
        raise Problem(400, "The 'resource' query parameter is required", type_="missing-resource")
    try:
        query = parse_resource(
            resource, domain=settings.effective_domain, base_url=settings.base_url
        )
    except UnresolvableResource as exc:
        raise Problem(404, str(exc), type_="unknown-resource") from exc
    account = await AccountStore(session).find(query.handle)
    if account is None:
        raise Problem(404, f"No account '{query.handle}' here", type_="unknown-resource")
    document = build_webfinger(
        account.handle, settings.effective_domain, urls.account(account.handle)
    )
    return JRDResponse(document, headers={"Access-Control-Allow-Origin": "*"})


@router.get("/.well-known/host-meta")
async def host_meta(settings: SettingsDep) -> Response:
    return Response(build_host_meta(settings.base_url), media_type="application/xrd+xml")


@router.get("/.well-known/nodeinfo")
async def nodeinfo_links(settings: SettingsDep) -> dict[str, object]:
    return build_nodeinfo_links(settings.base_url)


@router.get("/nodeinfo/{nodeinfo_version}")
async def nodeinfo(nodeinfo_version: str, session: SessionDep) -> Response:
    if nodeinfo_version not in NODEINFO_VERSIONS:
        raise Problem(404, f"NodeInfo {nodeinfo_version} is not served", type_="unknown-resource")
    accounts = int(await session.scalar(select(func.count()).select_from(Account)) or 0)
    posts = int(
        await session.scalar(
            select(func.count()).select_from(Post).where(Post.state == "published")
        )
        or 0
    )
    now = datetime.now(UTC)

    async def active_since(delta: timedelta) -> int:
        query = select(func.count(func.distinct(Post.account_id))).where(
            Post.state == "published", Post.published_at >= now - delta
        )
        return int(await session.scalar(query) or 0)

    usage = NodeUsage(
        total_users=accounts,
        active_month=await active_since(timedelta(days=30)),
        active_halfyear=await active_since(timedelta(days=180)),
        local_posts=posts,
    )
    profile = f"http://nodeinfo.diaspora.software/ns/schema/{nodeinfo_version}#"
    return JRDResponse(
        build_nodeinfo(nodeinfo_version, software_version(), usage),
        media_type=f'application/json; profile="{profile}"',
    )
