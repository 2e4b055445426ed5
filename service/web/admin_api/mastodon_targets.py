"""Admin API for an account's Mastodon targets (REST API publishing). Tokens never leave."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from federation.peers.addresses import ForbiddenUrl, check_url
from service.db.models import MastodonTarget
from service.runtime.secret_box import encrypt_secret
from service.web.dependencies import AdminDep, RowId, SessionDep, SettingsDep
from service.web.problems import Problem
from service.web.routes.actors import load_account

router = APIRouter(
    prefix="/api/admin/accounts/{handle}/mastodon-targets",
    tags=["admin: mastodon targets"],
    dependencies=[AdminDep],
)

Visibility = Literal["public", "unlisted", "private", "direct"]


class TargetCreate(BaseModel):
    instance_url: str = Field(..., min_length=8, max_length=2048)
    access_token: str = Field(..., min_length=1, max_length=512)
    visibility: Visibility = "public"


class TargetView(BaseModel):
    id: int
    instance_url: str
    visibility: str
    created_at: datetime | None

    @classmethod
    def of(cls, target: MastodonTarget) -> TargetView:
        return cls(
            id=target.id,
            instance_url=target.instance_url,
            visibility=target.visibility,
            created_at=target.created_at,
        )


@router.get("", response_model=list[TargetView])
async def list_targets(handle: str, session: SessionDep) -> list[TargetView]:
    account = await load_account(session, handle)
    targets = await session.scalars(
        select(MastodonTarget)
        .where(MastodonTarget.account_id == account.id)
        .order_by(MastodonTarget.id)
    )
    return [TargetView.of(target) for target in targets]


@router.post("", status_code=201, response_model=TargetView)
async def add_target(
    handle: str, body: TargetCreate, session: SessionDep, settings: SettingsDep
) -> TargetView:
    account = await load_account(session, handle)
    try:
        checked = check_url(
            body.instance_url, allow_private=settings.test_mode, allow_http=settings.test_mode
        )
    except ForbiddenUrl as error:
        raise Problem(
            422, error.detail, type_="invalid-instance-url", reason=error.reason
        ) from error
    instance_url = f"{checked.scheme}://{body.instance_url.split('://', 1)[1].split('/', 1)[0]}"
    target = MastodonTarget(
        account_id=account.id,
        instance_url=instance_url.lower(),
        access_token_encrypted=encrypt_secret(settings.effective_secret_key, body.access_token),
        visibility=body.visibility,
    )
    session.add(target)
    await session.flush()
    await session.refresh(target)
    return TargetView.of(target)


@router.delete("/{target_id}", status_code=204, response_class=Response)
async def remove_target(handle: str, target_id: RowId, session: SessionDep) -> Response:
    account = await load_account(session, handle)
    target = await session.get(MastodonTarget, target_id)
    if target is None or target.account_id != account.id:
        raise Problem(404, f"no Mastodon target {target_id} for {handle}", type_="not-found")
    await session.delete(target)
    return Response(status_code=204)
