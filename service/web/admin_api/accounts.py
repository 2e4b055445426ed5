"""Admin API: accounts and their keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.schemas import AccountChanges, AccountCreate, AccountView
from service.accounts.store import AccountExists, AccountNotFound, AccountStore
from service.db.models import Account
from service.publishing.activity_records import enqueue_deliveries
from service.publishing.profile_updates import publish_profile_update
from service.web.dependencies import (
    AdminDep,
    DatabaseDep,
    QueueDep,
    SessionDep,
    SettingsDep,
    UrlsDep,
)
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin/accounts", tags=["admin: accounts"], dependencies=[AdminDep])


async def _get(session: AsyncSession, handle: str) -> Account:
    try:
        return await AccountStore(session).get(handle, fresh=True)
    except AccountNotFound as exc:
        raise Problem(404, f"No account '{handle}'", type_="unknown-account") from exc


@router.get("", response_model=list[AccountView])
async def list_accounts(
    session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> list[AccountView]:
    accounts = await AccountStore(session).list()
    return [AccountView.of(account, urls, settings.effective_domain) for account in accounts]


@router.post("", status_code=201, response_model=AccountView)
async def create_account(
    body: AccountCreate, session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> AccountView:
    try:
        account = await AccountStore(session).create(body.handle, **body.to_columns())
    except AccountExists as exc:
        raise Problem(
            409, f"Account '{body.handle}' already exists", type_="account-exists"
        ) from exc
    account = await _get(session, account.handle)
    return AccountView.of(account, urls, settings.effective_domain)


@router.get("/{handle}", response_model=AccountView)
async def get_account(
    handle: str, session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> AccountView:
    return AccountView.of(await _get(session, handle), urls, settings.effective_domain)


@router.patch("/{handle}", response_model=AccountView)
async def update_account(
    handle: str,
    body: AccountChanges,
    database: DatabaseDep,
    queue: QueueDep,
    urls: UrlsDep,
    settings: SettingsDep,
) -> AccountView:
    async with database.transaction() as session:
        await _get(session, handle)
        try:
            account = await AccountStore(session).update(handle, **body.to_columns())
        except AccountNotFound as exc:
            # Deleted by a concurrent request since it was looked up.
            raise Problem(404, f"No account '{handle}'", type_="unknown-account") from exc
        published = await publish_profile_update(session, account, urls)
        view = AccountView.of(await _get(session, handle), urls, settings.effective_domain)
    await enqueue_deliveries(queue, [published])
    return view


@router.delete("/{handle}", status_code=204)
async def delete_account(handle: str, session: SessionDep) -> Response:
    await _get(session, handle)
    await AccountStore(session).delete(handle)
    return Response(status_code=204)


@router.post("/{handle}/keys/rotate", response_model=AccountView)
async def rotate_keys(
    handle: str, database: DatabaseDep, queue: QueueDep, urls: UrlsDep, settings: SettingsDep
) -> AccountView:
    async with database.transaction() as session:
        await _get(session, handle)
        try:
            account = await AccountStore(session).rotate_keys(handle)
        except AccountNotFound as exc:
            # Deleted by a concurrent request since it was looked up.
            raise Problem(404, f"No account '{handle}'", type_="unknown-account") from exc
        # Followers' servers learn the new key from the Update (signed with the new key).
        published = await publish_profile_update(session, account, urls)
        view = AccountView.of(await _get(session, handle), urls, settings.effective_domain)
    await enqueue_deliveries(queue, [published])
    return view
