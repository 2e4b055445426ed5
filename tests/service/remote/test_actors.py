"""What the relay records about remote actors, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from federation.activitypub.inbox_activities import ActorEndpoints
from service.db.engine import Database
from service.db.models import RemoteActor
from service.remote.actors import LearnedKey, record_remote_actors


def _endpoints(name: str, *, key: str | None = None) -> ActorEndpoints:
    actor = f"https://remote.example/users/{name}"
    return ActorEndpoints(
        actor_id=actor,
        inbox=f"{actor}/inbox",
        shared_inbox="https://remote.example/inbox",
        key_id=f"{actor}#main-key" if key else None,
        public_key_pem=key,
        handle=name,
        also_known_as=(),
        moved_to=None,
    )


def _key(name: str, pem: str, *, with_document: bool = True) -> LearnedKey:
    endpoints = _endpoints(name)
    owner = endpoints.actor_id
    return LearnedKey(owner, f"{owner}#main-key", pem, endpoints if with_document else None)


async def _stored(database: Database) -> dict[str, RemoteActor]:
    async with database.session() as session:
        return {row.uri: row for row in await session.scalars(select(RemoteActor))}


async def test_keys_learned_together_are_recorded_with_their_owners_inboxes(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key(n, f"PEM-{n}") for n in ("a", "b", "c")])

    stored = await _stored(database)
    assert {row.handle: (row.public_key_pem, row.inbox) for row in stored.values()} == {
        n: (f"PEM-{n}", f"https://remote.example/users/{n}/inbox") for n in ("a", "b", "c")
    }


async def test_a_new_key_replaces_the_stored_one(database: Database) -> None:
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key("a", "OLD")])
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key("a", "NEW")])

    [row] = (await _stored(database)).values()
    assert row.public_key_pem == "NEW"


async def test_a_key_learned_without_its_owners_document_keeps_the_stored_inboxes(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key("a", "OLD")])
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key("a", "NEW", with_document=False)])

    [row] = (await _stored(database)).values()
    assert (row.public_key_pem, row.inbox) == ("NEW", "https://remote.example/users/a/inbox")


async def test_inboxes_recorded_without_a_key_keep_the_stored_key(database: Database) -> None:
    async with database.transaction() as session:
        await record_remote_actors(session, keys=[_key("a", "PEM")])
    moved = replace(_endpoints("a"), inbox="https://x/in")
    async with database.transaction() as session:
        await record_remote_actors(session, endpoints=[moved])

    [row] = (await _stored(database)).values()
    assert (row.public_key_pem, row.inbox) == ("PEM", "https://x/in")
