"""Admin API for an account's community: moves in and out, and follower export/import."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from service.accounts.store import AccountStore
from service.community.account_moves import (
    MigrationRefused,
    add_alias,
    migration_status,
    move_account,
    remove_alias,
)
from service.community.follower_export import (
    follower_records,
    followers_csv,
    followers_json,
    import_following,
)
from service.db.models import Account
from service.publishing.activity_records import enqueue_deliveries
from service.remote.accounts import RemoteAccounts, signer_for
from service.web.dependencies import AdminDep, QueueDep, SessionDep, SettingsDep, UrlsDep
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin/accounts", tags=["admin: community"], dependencies=[AdminDep])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
MAX_IMPORT_BYTES = 256 * 1024


class AliasRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(
        alias="from",
        min_length=3,
        max_length=2048,
        description="The old account: user@domain, acct:user@domain or its actor URL.",
    )


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(
        min_length=3,
        max_length=2048,
        description="The new account: user@domain, acct:user@domain or its actor URL.",
    )


async def _account(session: SessionDep, handle: str) -> Account:
    account = await AccountStore(session).find(handle.lower())
    if account is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    return account


def _refused(error: MigrationRefused) -> Problem:
    return Problem(error.status, error.detail, type_=error.kind)


@router.get("/{handle}/migration")
async def get_migration(handle: str, session: SessionDep) -> dict[str, Any]:
    """Aliases, a move out if any, and how many followers of an old account have arrived."""
    return await migration_status(session, await _account(session, handle))


@router.post("/{handle}/aliases", status_code=201)
async def create_alias(
    handle: str, body: AliasRequest, session: SessionDep, urls: UrlsDep, settings: SettingsDep
) -> dict[str, Any]:
    """Prepare a move in: the old account is resolved, added to `alsoKnownAs`, and its
    follower count becomes the migration's target."""
    account = await _account(session, handle)
    async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
        try:
            added = await add_alias(
                session, account, body.from_, remote, urls, settings.effective_domain
            )
        except MigrationRefused as error:
            raise _refused(error) from error
    return {
        "also_known_as": list(account.also_known_as),
        "from": added.migration.remote_actor_uri,
        "address": added.migration.remote_address,
        "followers_expected": added.migration.expected_followers,
        "next_steps": list(added.steps),
    }


@router.delete("/{handle}/aliases", status_code=204, response_class=Response)
async def delete_alias(
    handle: str,
    session: SessionDep,
    actor: Annotated[str, Query(min_length=1, max_length=2048)],
) -> Response:
    account = await _account(session, handle)
    if not await remove_alias(session, account, actor):
        raise Problem(404, f"{actor} is not an alias of @{account.handle}", type_="unknown-alias")
    return Response(status_code=204)


@router.post("/{handle}/move", status_code=202)
async def move(
    handle: str,
    body: MoveRequest,
    session: SessionDep,
    urls: UrlsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> dict[str, Any]:
    """Move the account's followers to another account, which must already list this one in
    its `alsoKnownAs`."""
    account = await _account(session, handle)
    async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
        try:
            sent = await move_account(
                session,
                account,
                body.to,
                remote,
                urls,
                domain=settings.effective_domain,
                cooldown=timedelta(days=settings.move_cooldown_days),
            )
        except MigrationRefused as error:
            raise _refused(error) from error
    await session.commit()
    await enqueue_deliveries(queue, [sent.published])
    return {
        "moved_to": sent.migration.remote_actor_uri,
        "address": sent.migration.remote_address,
        "move_activity": sent.published.activity_uri,
        "deliveries": sent.published.delivery_count,
    }


@router.get("/{handle}/followers/export", response_model=None)
async def export_followers(
    handle: str,
    session: SessionDep,
    urls: UrlsDep,
    settings: SettingsDep,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",  # noqa: A002 - API name
) -> Response | dict[str, Any]:
    """Followers as Mastodon's follow-list CSV (importable by any Mastodon server) or JSON."""
    account = await _account(session, handle)
    async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
        records = await follower_records(session, account, remote)
    if format == "json":
        return followers_json(account, urls, records)
    return Response(
        followers_csv(records),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{account.handle}_followers.csv"'},
    )


@router.post("/{handle}/following/import", status_code=202)
async def import_following_list(
    handle: str,
    request: Request,
    session: SessionDep,
    urls: UrlsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> dict[str, Any]:
    """Follow every account of a Mastodon follow list (CSV as the request body)."""
    account = await _account(session, handle)
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise Problem(413, f"A follow list may have at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "The follow list is not UTF-8 text", type_="bad-csv") from error
    async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
        report = await import_following(session, account, text, remote, urls)
    await session.commit()
    await enqueue_deliveries(queue, report.published)
    return report.as_json()
