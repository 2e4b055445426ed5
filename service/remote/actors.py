"""RemoteActor rows: the one place that records, refreshes or erases what we know of a
remote actor (its keys, its inboxes, its aliases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from federation.activitypub.inbox_activities import ActorEndpoints
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


# What an upsert of each kind of row overwrites when the actor is known already. A row
# without a key keeps the stored one; a key alone keeps the stored inboxes.
_ENDPOINT_COLUMNS = ("host", "handle", "inbox", "shared_inbox", "also_known_as", "moved_to")
_KEY_COLUMNS = ("key_id", "public_key_pem")
_UPDATED: dict[str, tuple[str, ...]] = {
    "endpoints_and_key": (*_ENDPOINT_COLUMNS, *_KEY_COLUMNS, "fetched_at"),
    "endpoints": (*_ENDPOINT_COLUMNS, "fetched_at"),
    "key": (*_KEY_COLUMNS, "fetched_at"),
}


@lru_cache(maxsize=8)
def _remote_actor_upsert(dialect: str, kind: str) -> Any:
    """One statement per dialect and kind of row, built once: executed with many parameter
    sets, it costs one round trip for a whole batch and is never compiled again."""
    statement = _insert_for(dialect, RemoteActor)
    return statement.on_conflict_do_update(
        index_elements=[RemoteActor.uri],
        set_={column: statement.excluded[column] for column in _UPDATED[kind]},
    )


def _endpoint_row(endpoints: ActorEndpoints, now: datetime) -> tuple[str, dict[str, Any]]:
    row: dict[str, Any] = {
        "uri": endpoints.actor_id,
        "host": actor_host(endpoints.actor_id),
        "handle": (endpoints.handle or "")[:255] or None,
        "inbox": endpoints.inbox,
        "shared_inbox": endpoints.shared_inbox,
        "also_known_as": list(endpoints.also_known_as),
        "moved_to": endpoints.moved_to,
        "fetched_at": now,
    }
    if endpoints.key_id and endpoints.public_key_pem:
        row["key_id"] = endpoints.key_id
        row["public_key_pem"] = endpoints.public_key_pem
        return "endpoints_and_key", row
    return "endpoints", row


def _learned_key_row(learned: LearnedKey, now: datetime) -> tuple[str, dict[str, Any]]:
    endpoints = learned.endpoints
    if endpoints is not None and endpoints.actor_id == learned.owner:
        return _endpoint_row(
            replace(endpoints, key_id=learned.key_id, public_key_pem=learned.public_key_pem), now
        )
    return "key", {
        "uri": learned.owner,
        "host": actor_host(learned.owner),
        "key_id": learned.key_id,
        "public_key_pem": learned.public_key_pem,
        "also_known_as": [],
        "fetched_at": now,
    }


def record_remote_actors_sync(
    connection: Connection | Session,
    *,
    keys: Sequence[LearnedKey] = (),
    endpoints: Sequence[ActorEndpoints] = (),
) -> None:
    """Record keys (replacing an actor's previous one: rotation) and actors' inboxes and
    aliases, in at most one statement per kind of row. One entry per actor."""
    now = datetime.now(UTC)
    rows: dict[str, list[dict[str, Any]]] = {}
    for kind, row in [
        *(_learned_key_row(learned, now) for learned in keys),
        *(_endpoint_row(actor, now) for actor in endpoints),
    ]:
        rows.setdefault(kind, []).append(row)
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    for kind, parameters in rows.items():
        connection.execute(_remote_actor_upsert(bind.dialect.name, kind), parameters)


async def record_remote_actors(
    session: AsyncSession,
    *,
    keys: Sequence[LearnedKey] = (),
    endpoints: Sequence[ActorEndpoints] = (),
) -> None:
    await session.run_sync(
        lambda sync: record_remote_actors_sync(sync, keys=keys, endpoints=endpoints)
    )


async def remember_key(session: AsyncSession, learned: LearnedKey) -> None:
    await record_remote_actors(session, keys=[learned])


async def stored_keys(session: AsyncSession, key_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(owner, PEM) of each of these keys recorded earlier; unknown ones are left out."""
    found: dict[str, tuple[str, str]] = {}
    unique = sorted(set(key_ids))
    for start in range(0, len(unique), 500):
        rows = await session.execute(
            select(RemoteActor.key_id, RemoteActor.uri, RemoteActor.public_key_pem).where(
                RemoteActor.key_id.in_(unique[start : start + 500]),
                RemoteActor.public_key_pem.is_not(None),
            )
        )
        for key_id, owner, pem in rows:
            found.setdefault(str(key_id), (str(owner), str(pem)))
    return found


async def remember_endpoints(session: AsyncSession, endpoints: ActorEndpoints) -> None:
    """Record an actor's inboxes and aliases (and its key, when the document carries one)."""
    await record_remote_actors(session, endpoints=[endpoints])


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
