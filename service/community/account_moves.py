"""Account moves, both ways, following Mastodon's rules.

Moving in (an existing Mastodon account brings its followers here): the old account's actor
id goes into our actor's `alsoKnownAs`, then the owner triggers the move on the old server,
which sends `Move` to its followers' servers; each of those re-checks our `alsoKnownAs`
and sends us an ordinary Follow, accepted by the inbox as usual. Progress is followers
arrived since the alias was added against the old account's follower count.

Moving out: the new account must already list ours in its `alsoKnownAs` (receiving servers
check that and drop the Move otherwise). We set `movedTo`, and a `Move` goes to every
follower through the delivery engine. A cooldown between moves stops an account from being
bounced around, as Mastodon does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from federation.activitypub.vocabulary import AS_CONTEXT
from service.accounts.store import AccountStore
from service.db.models import Account, AccountMigration, Follower
from service.publishing.activity_records import (
    PublishedActivity,
    new_activity_uri,
    publish_activity,
)
from service.remote.accounts import AccountResolutionError, RemoteAccounts, remember_resolved

MASTODON_MOVE_STEPS = (
    "On the old account's server, open Preferences → Account → Move to a different account.",
    "Enter the new address {address} and the old account's password, then confirm.",
    "The old server tells its followers' servers; each of them follows {address} on its own.",
    "Watch the followers arrive: fedirelay accounts migration {handle}",
)
MASTODON_ALIAS_STEPS = (
    "On the new account's server, open Preferences → Account → Moving from a different "
    "account → Create an account alias.",
    "Enter {old_address} as the alias and save; then run the move again.",
)


class MigrationRefused(Exception):
    """The move cannot happen now; `detail` tells the admin what to do."""

    def __init__(self, detail: str, *, status: int = 409, kind: str = "move-refused") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.kind = kind


def move_activity(activity_id: str, actor: str, target: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": "Move",
        "actor": actor,
        "object": actor,
        "target": target,
    }


def local_address(account: Account, domain: str) -> str:
    return f"{account.handle}@{domain}"


async def _accepted_followers(
    session: AsyncSession, account: Account, since: datetime | None = None
) -> int:
    query = select(func.count()).where(
        Follower.account_id == account.id, Follower.state == "accepted"
    )
    if since is not None:
        query = query.where(Follower.created_at >= since)
    return int(await session.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class AliasAdded:
    migration: AccountMigration
    steps: tuple[str, ...]


async def add_alias(
    session: AsyncSession,
    account: Account,
    old_reference: str,
    remote: RemoteAccounts,
    urls: InstanceUrls,
    domain: str,
    now: datetime | None = None,
) -> AliasAdded:
    """Prepare a move in: alias the old account and start tracking its followers' arrival."""
    now = now or datetime.now(UTC)
    try:
        old = await remote.resolve(old_reference)
    except AccountResolutionError as error:
        raise MigrationRefused(error.detail, status=422, kind="unresolvable-account") from error
    own_actor = urls.account(account.handle).actor
    if old.actor_id == own_actor:
        raise MigrationRefused("an account cannot be its own alias", status=422)
    await remember_resolved(session, old)
    if old.actor_id not in account.also_known_as:
        # A new list, so the JSON column is seen as changed.
        await AccountStore(session).update(
            account.handle, also_known_as=[*account.also_known_as, old.actor_id]
        )
    expected = await remote.follower_count(old)
    migration = AccountMigration(
        account_id=account.id,
        direction="in",
        remote_actor_uri=old.actor_id,
        remote_address=old.address,
        expected_followers=expected,
        followers_before=await _accepted_followers(session, account),
        started_at=now,
    )
    session.add(migration)
    await session.flush()
    address = local_address(account, domain)
    steps = tuple(
        step.format(address=address, handle=account.handle) for step in MASTODON_MOVE_STEPS
    )
    return AliasAdded(migration, steps)


async def remove_alias(session: AsyncSession, account: Account, actor_id: str) -> bool:
    if actor_id not in account.also_known_as:
        return False
    await AccountStore(session).update(
        account.handle, also_known_as=[item for item in account.also_known_as if item != actor_id]
    )
    return True


@dataclass(frozen=True, slots=True)
class MoveSent:
    migration: AccountMigration
    published: PublishedActivity


async def move_account(
    session: AsyncSession,
    account: Account,
    target_reference: str,
    remote: RemoteAccounts,
    urls: InstanceUrls,
    *,
    domain: str,
    cooldown: timedelta,
    now: datetime | None = None,
) -> MoveSent:
    """Move out. Call `enqueue_deliveries([result.published])` after the commit."""
    now = now or datetime.now(UTC)
    if account.moved_at is not None and now - account.moved_at < cooldown:
        allowed = account.moved_at + cooldown
        raise MigrationRefused(
            f"@{account.handle} moved on {format_timestamp(account.moved_at)}; "
            f"it may move again after {format_timestamp(allowed)}",
            status=429,
            kind="move-cooldown",
        )
    try:
        target = await remote.resolve(target_reference)
    except AccountResolutionError as error:
        raise MigrationRefused(error.detail, status=422, kind="unresolvable-account") from error
    own_actor = urls.account(account.handle).actor
    if target.actor_id == own_actor:
        raise MigrationRefused("an account cannot move to itself", status=422)
    if own_actor not in target.also_known_as:
        steps = " ".join(
            step.format(old_address=local_address(account, domain)) for step in MASTODON_ALIAS_STEPS
        )
        raise MigrationRefused(
            f"{target.address} does not list {own_actor} in its alsoKnownAs, so servers "
            f"would ignore the move. {steps}",
            kind="alias-missing",
        )
    await remember_resolved(session, target)
    await AccountStore(session).update(account.handle, moved_to=target.actor_id, moved_at=now)
    activity_id = new_activity_uri(urls)
    published = await publish_activity(
        session,
        account,
        move_activity(activity_id, own_actor, target.actor_id),
        ordering_key=f"move:{own_actor}",
        in_outbox=False,
    )
    migration = AccountMigration(
        account_id=account.id,
        direction="out",
        remote_actor_uri=target.actor_id,
        remote_address=target.address,
        followers_before=await _accepted_followers(session, account),
        move_activity_uri=activity_id,
        started_at=now,
    )
    session.add(migration)
    await session.flush()
    return MoveSent(migration, published)


async def migration_status(session: AsyncSession, account: Account) -> dict[str, Any]:
    """Where the account's moves stand, for the admin API and the dashboard."""
    rows = (
        await session.execute(
            select(AccountMigration)
            .where(AccountMigration.account_id == account.id)
            .order_by(AccountMigration.started_at.desc(), AccountMigration.id.desc())
        )
    ).scalars()
    followers_now = await _accepted_followers(session, account)
    incoming = []
    outgoing = []
    for migration in rows:
        if migration.direction == "in":
            arrived = await _accepted_followers(session, account, since=migration.started_at)
            expected = migration.expected_followers
            incoming.append(
                {
                    "from": migration.remote_actor_uri,
                    "address": migration.remote_address,
                    "aliased": migration.remote_actor_uri in account.also_known_as,
                    "started_at": format_timestamp(migration.started_at),
                    "followers_expected": expected,
                    "followers_arrived": arrived,
                    "progress": round(min(arrived / expected, 1.0), 4) if expected else None,
                }
            )
        else:
            outgoing.append(
                {
                    "to": migration.remote_actor_uri,
                    "address": migration.remote_address,
                    "moved_at": format_timestamp(migration.started_at),
                    "move_activity": migration.move_activity_uri,
                    "followers_at_move": migration.followers_before,
                    # Followers leave as their servers process the Move and unfollow.
                    "followers_remaining": followers_now,
                }
            )
    return {
        "account": account.handle,
        "also_known_as": list(account.also_known_as),
        "moved_to": account.moved_to,
        "moved_at": format_timestamp(account.moved_at) if account.moved_at else None,
        "followers": followers_now,
        "incoming": incoming,
        "outgoing": outgoing,
    }
