"""RemoteActor rows: the one place that records, refreshes or erases what we know of a
remote actor (its keys, its inboxes, its aliases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from federation.inbox_activities import ActorEndpoints
from service.db.models import RemoteActor


def upsert_statement(session: AsyncSession, table: Any) -> Any:
    """`INSERT` with the dialect's ON CONFLICT support (SQLite and PostgreSQL both have it)."""
    return _insert_for(session.get_bind().dialect.name, table)


def _insert_for(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def actor_host(actor_uri: str) -> str:
    return (urlsplit(actor_uri).netloc or "").lower()[:255]


@dataclass(frozen=True, slots=True)
class LearnedKey:
    """A verified key, with its owner's inboxes when the key came from the owner's document."""

    owner: str
    key_id: str
    public_key_pem: str
    endpoints: ActorEndpoints | None = None


def learned_key_statement(dialect: str, learned: LearnedKey) -> Any:
    """The upsert recording a key for its owner (replacing the previous one: rotation)."""
    endpoints = learned.endpoints
    if endpoints is not None and endpoints.actor_id == learned.owner:
        return _endpoints_statement(
            dialect,
            replace(endpoints, key_id=learned.key_id, public_key_pem=learned.public_key_pem),
        )
    now = datetime.now(UTC)
    statement = _insert_for(dialect, RemoteActor).values(
        uri=learned.owner,
        host=actor_host(learned.owner),
        key_id=learned.key_id,
        public_key_pem=learned.public_key_pem,
        also_known_as=[],
        fetched_at=now,
    )
    return statement.on_conflict_do_update(
        index_elements=[RemoteActor.uri],
        set_={
            "key_id": learned.key_id,
            "public_key_pem": learned.public_key_pem,
            "fetched_at": now,
        },
    )


async def remember_key(session: AsyncSession, learned: LearnedKey) -> None:
    await session.execute(learned_key_statement(session.get_bind().dialect.name, learned))


async def stored_key(session: AsyncSession, key_id: str) -> tuple[str, str] | None:
    """(owner, PEM) of a key recorded earlier, or None."""
    row = (
        await session.execute(
            select(RemoteActor.uri, RemoteActor.public_key_pem)
            .where(RemoteActor.key_id == key_id)
            .limit(1)
        )
    ).first()
    if row is None or row[1] is None:
        return None
    return str(row[0]), str(row[1])


async def remember_endpoints(session: AsyncSession, endpoints: ActorEndpoints) -> None:
    """Record an actor's inboxes and aliases (and its key, when the document carries one)."""
    await session.execute(_endpoints_statement(session.get_bind().dialect.name, endpoints))


def _endpoints_statement(dialect: str, endpoints: ActorEndpoints) -> Any:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "host": actor_host(endpoints.actor_id),
        "handle": (endpoints.handle or "")[:255] or None,
        "inbox": endpoints.inbox,
        "shared_inbox": endpoints.shared_inbox,
        "also_known_as": list(endpoints.also_known_as),
        "moved_to": endpoints.moved_to,
        "fetched_at": now,
    }
    if endpoints.key_id and endpoints.public_key_pem:
        values["key_id"] = endpoints.key_id
        values["public_key_pem"] = endpoints.public_key_pem
    statement = _insert_for(dialect, RemoteActor).values(uri=endpoints.actor_id, **values)
    return statement.on_conflict_do_update(index_elements=[RemoteActor.uri], set_=values)


async def find_remote_actor(session: AsyncSession, actor_uri: str) -> RemoteActor | None:
    return (
        await session.execute(select(RemoteActor).where(RemoteActor.uri == actor_uri))
    ).scalar_one_or_none()


async def fresh_endpoints(
    session: AsyncSession, actor_uris: Sequence[str], max_age: timedelta
) -> dict[str, ActorEndpoints]:
    """The inboxes of those actors whose documents were fetched within `max_age`."""
    oldest = datetime.now(UTC) - max_age
    found: dict[str, ActorEndpoints] = {}
    unique = sorted(set(actor_uris))
    for start in range(0, len(unique), 500):
        rows = await session.scalars(
            select(RemoteActor).where(
                RemoteActor.uri.in_(unique[start : start + 500]),
                RemoteActor.inbox.is_not(None),
                RemoteActor.fetched_at >= oldest,
            )
        )
        found.update((remote.uri, stored_endpoints(remote)) for remote in rows)
    return found


def stored_endpoints(remote: RemoteActor) -> ActorEndpoints:
    return ActorEndpoints(
        actor_id=remote.uri,
        inbox=remote.inbox or "",
        shared_inbox=remote.shared_inbox,
        key_id=remote.key_id,
        public_key_pem=remote.public_key_pem,
        handle=remote.handle,
        also_known_as=tuple(remote.also_known_as or ()),
        moved_to=remote.moved_to,
    )


async def forget_remote_actor(session: AsyncSession, actor_uri: str) -> int:
    result = await session.execute(delete(RemoteActor).where(RemoteActor.uri == actor_uri))
    return int(getattr(result, "rowcount", 0) or 0)
