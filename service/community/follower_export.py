"""Taking an account's audience elsewhere and bringing a follow list in.

Exports: followers as Mastodon's follow-list CSV (so another server can import them) or as
JSON with where each follower receives posts. Addresses come from what the relay knows of
each actor; an actor never seen with a handle is fetched once and remembered.

Import: the rare case of the relay following others. Each address is resolved, a
`Following` row is stored and a signed Follow goes out through the delivery engine; the
remote Accept (handled by the inbox) flips the row to accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.follow_lists import (
    ListRow,
    follow_activity,
    read_follow_list,
    write_follow_list,
)
from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from service.db.models import Account, Follower, Following
from service.publishing.activity_records import (
    PublishedActivity,
    new_activity_uri,
    publish_activity,
)
from service.remote.accounts import (
    AccountResolutionError,
    RemoteAccounts,
    remember_resolved,
    stored_address,
)


@dataclass(frozen=True, slots=True)
class FollowerRecord:
    actor_id: str
    address: str | None
    inbox: str
    shared_inbox: str | None
    since: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor_id,
            "address": self.address,
            "inbox": self.inbox,
            "shared_inbox": self.shared_inbox,
            "since": format_timestamp(self.since),
        }


async def accepted_followers(session: AsyncSession, account: Account) -> list[Follower]:
    rows = await session.execute(
        select(Follower)
        .where(Follower.account_id == account.id, Follower.state == "accepted")
        .order_by(Follower.created_at, Follower.id)
    )
    return list(rows.scalars())


async def follower_records(
    session: AsyncSession, account: Account, remote: RemoteAccounts | None = None
) -> list[FollowerRecord]:
    """Every accepted follower with its address; with `remote`, unknown handles are fetched."""
    records = []
    for follower in await accepted_followers(session, account):
        address = await stored_address(session, follower.actor_uri)
        if address is None and remote is not None:
            try:
                resolved = await remote.fetch_actor(follower.actor_uri)
            except AccountResolutionError:
                resolved = None
            if resolved is not None and resolved.endpoints.handle:
                await remember_resolved(session, resolved)
                address = resolved.address
        records.append(
            FollowerRecord(
                actor_id=follower.actor_uri,
                address=address,
                inbox=follower.inbox,
                shared_inbox=follower.shared_inbox,
                since=follower.created_at,
            )
        )
    return records


def followers_csv(records: list[FollowerRecord]) -> str:
    """Mastodon's follow-list CSV; followers whose address is unknown cannot be listed."""
    return write_follow_list(ListRow(record.address) for record in records if record.address)


def followers_json(
    account: Account, urls: InstanceUrls, records: list[FollowerRecord]
) -> dict[str, Any]:
    return {
        "account": urls.account(account.handle).actor,
        "total": len(records),
        "followers": [record.as_json() for record in records],
    }


@dataclass(slots=True)
class ImportReport:
    followed: list[str] = field(default_factory=list)
    already_following: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    published: list[PublishedActivity] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "followed": self.followed,
            "already_following": self.already_following,
            "failed": self.failed,
        }


async def import_following(
    session: AsyncSession,
    account: Account,
    csv_text: str,
    remote: RemoteAccounts,
    urls: InstanceUrls,
) -> ImportReport:
    """Follow every account of a Mastodon follow list. Call `enqueue_deliveries` with
    `report.published` after the transaction commits."""
    parsed = read_follow_list(csv_text)
    report = ImportReport()
    for line, text, reason in parsed.rejected:
        report.failed.append({"address": text, "reason": f"line {line}: {reason}"})
    actor = urls.account(account.handle).actor
    for address in parsed.addresses:
        try:
            resolved = await remote.resolve(str(address))
        except AccountResolutionError as error:
            report.failed.append({"address": str(address), "reason": error.detail})
            continue
        if resolved.actor_id == actor:
            report.failed.append({"address": str(address), "reason": "that is this account"})
            continue
        await remember_resolved(session, resolved)
        existing = await session.scalar(
            select(Following).where(
                Following.account_id == account.id, Following.actor_uri == resolved.actor_id
            )
        )
        if existing is not None and existing.state == "accepted":
            report.already_following.append(str(address))
            continue
        activity_id = new_activity_uri(urls)
        if existing is None:
            existing = Following(account_id=account.id, actor_uri=resolved.actor_id)
            session.add(existing)
        existing.state = "pending"
        existing.follow_activity_id = activity_id
        await session.flush()
        report.published.append(
            await publish_activity(
                session,
                account,
                follow_activity(activity_id, actor, resolved.actor_id),
                audience=[resolved.endpoints.inbox],
                ordering_key=f"follow:{resolved.actor_id}",
                in_outbox=False,
            )
        )
        report.followed.append(str(address))
    return report
