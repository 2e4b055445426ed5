"""The inbox HTTP endpoints: what is accepted, and the exact answer to every broken request.

Status choices: an activity whose `actor` is not the owner of the signing key is 401 (the
signature does not authenticate that actor); an authenticated actor speaking for an
object on another origin is 403.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select

from bench.harness.fleet import Fleet
from bench.harness.fleet_actors import key_pool
from bench.harness.relay_harness import asgi_client
from federation.signatures.digest import digest_header
from service.app import create_app
from service.db.engine import Database
from service.db.models import BlockedDomain, InboxActivity, RemoteActor
from service.runtime.embedded_redis import EmbeddedRedis, free_port
from service.runtime.settings import Settings
from tests.federation_peers import (
    activity_from,
    create_account,
    post_signed,
    signed_headers,
    stale_date,
)

pytest_plugins = ("tests.fleet_fixture",)


@asynccontextmanager
async def relay_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        yield http


async def inbox_rows(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count(InboxActivity.id))) or 0)


def like_of(actor, settings: Settings) -> dict:
    return activity_from(actor, "Like", f"{settings.base_url}/objects/some-post")


async def test_signed_activity_is_stored_and_enqueued(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet, redis: Redis
) -> None:
    actor = fleet.actor(0, 0)
    activity = like_of(actor, settings)
    response = await post_signed(client, settings, actor, activity)
    assert response.status_code == 202
    async with database.session() as session:
        row = (await session.execute(select(InboxActivity))).scalar_one()
    assert row.activity_uri == activity["id"]
    assert row.actor_uri == actor.id
    assert row.activity_type == "Like"
    assert row.state == "received"
    assert row.key_id == actor.key_id
    assert row.account_id is None
    assert [key async for key in redis.scan_iter(f"arq:job:*:inbox-batch:{row.id}:*")]


async def test_repeated_activity_is_accepted_once(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    activity = like_of(actor, settings)
    first = await post_signed(client, settings, actor, activity)
    second = await post_signed(client, settings, actor, activity)
    assert (first.status_code, second.status_code) == (202, 202)
    assert await inbox_rows(database) == 1


async def test_concurrent_requests_are_stored_together_and_each_once(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet, redis: Redis
) -> None:
    actors = [fleet.actor(host, number) for host in range(2) for number in range(3)]
    activities = [like_of(actor, settings) for actor in actors]
    sends = [post_signed(client, settings, a, doc) for a, doc in zip(actors, activities)]
    repeats = [post_signed(client, settings, a, doc) for a, doc in zip(actors, activities)]
    responses = await asyncio.gather(*sends, *repeats)
    assert {response.status_code for response in responses} == {202}
    async with database.session() as session:
        rows = (await session.execute(select(InboxActivity))).scalars().all()
    assert sorted(row.activity_uri for row in rows) == sorted(doc["id"] for doc in activities)
    batches = [key async for key in redis.scan_iter("arq:job:*:inbox-batch:*")]
    assert batches


async def test_account_inbox_records_the_account(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    account = await create_account(database)
    actor = fleet.actor(0, 1)
    response = await post_signed(
        client, settings, actor, like_of(actor, settings), path="/users/news/inbox"
    )
    assert response.status_code == 202
    async with database.session() as session:
        row = (await session.execute(select(InboxActivity))).scalar_one()
    assert row.account_id == account.id


async def test_unknown_account_inbox_is_404(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    response = await post_signed(
        client, settings, actor, like_of(actor, settings), path="/users/nobody/inbox"
    )
    assert response.status_code == 404
    assert await inbox_rows(database) == 0


async def test_missing_signature_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    body = json.dumps(like_of(fleet.actor(0, 0), settings)).encode()
    response = await client.post(
        "/inbox", content=body, headers={"Content-Type": "application/activity+json"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "signature_missing"
    assert "WWW-Authenticate" in response.headers
    assert await inbox_rows(database) == 0


async def test_bad_signature_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = json.dumps(like_of(actor, settings)).encode()
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    signature = headers["Signature"]
    start = signature.index('signature="') + len('signature="')
    flipped = "A" if signature[start] != "A" else "B"
    headers["Signature"] = signature[:start] + flipped + signature[start + 1 :]
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "signature_invalid"
    assert await inbox_rows(database) == 0


async def test_stale_date_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = json.dumps(like_of(actor, settings)).encode()
    import time

    headers = signed_headers(actor, f"{settings.base_url}/inbox", body, now=time.time() - 7200)
    assert headers["Date"] == stale_date() or headers["Date"]
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "signature_stale"
    assert await inbox_rows(database) == 0


async def test_wrong_digest_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = json.dumps(like_of(actor, settings)).encode()
    # Signed over a Digest that belongs to another body.
    url = f"{settings.base_url}/inbox"
    from federation.signatures.cavage import sign_request

    headers = sign_request(
        "POST",
        url,
        {"Digest": digest_header(b"something else")},
        body,
        actor.key_id,
        actor.key.private_key,
    )
    headers["Digest"] = digest_header(b"something else")
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "digest_mismatch"
    assert await inbox_rows(database) == 0


async def test_body_changed_after_signing_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    activity = like_of(actor, settings)
    body = json.dumps(activity).encode()
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    activity["object"] = f"{settings.base_url}/objects/another-post"
    response = await client.post("/inbox", content=json.dumps(activity).encode(), headers=headers)
    assert response.status_code == 401
    assert await inbox_rows(database) == 0


async def test_signature_for_another_path_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = json.dumps(like_of(actor, settings)).encode()
    headers = signed_headers(actor, f"{settings.base_url}/users/news/inbox", body)
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert await inbox_rows(database) == 0


async def test_activity_of_another_actor_than_the_key_owner_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    signer, claimed = fleet.actor(0, 0), fleet.actor(0, 1)
    response = await post_signed(client, settings, signer, like_of(claimed, settings))
    assert response.status_code == 401
    assert response.json()["type"].endswith("/actor-mismatch")
    assert await inbox_rows(database) == 0


async def test_key_id_of_another_actor_with_own_private_key_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    victim, attacker = fleet.actor(0, 0), fleet.actor(1, 0)
    body = json.dumps(like_of(victim, settings)).encode()
    # Pool keys are shared between actors; take one the victim does not use.
    other_key = next(key for key in key_pool(4) if key.public_pem != victim.key.public_pem)
    attacker.key = other_key
    from federation.signatures.cavage import sign_request

    headers = sign_request(
        "POST", f"{settings.base_url}/inbox", {}, body, victim.key_id, other_key.private_key
    )
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "signature_invalid"
    assert await inbox_rows(database) == 0


async def test_object_of_foreign_origin_is_403(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor, other_host = fleet.actor(0, 0), fleet.actor(1, 0)
    note = {
        "id": f"{other_host.host.base_url}/users/{other_host.handle}/statuses/1",
        "type": "Note",
        "attributedTo": other_host.id,
        "content": "impersonation",
    }
    response = await post_signed(client, settings, actor, activity_from(actor, "Create", note))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/foreign-origin")
    assert await inbox_rows(database) == 0


async def test_activity_id_of_foreign_origin_is_403(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor, other_host = fleet.actor(0, 0), fleet.actor(1, 0)
    activity = like_of(actor, settings)
    activity["id"] = f"{other_host.host.base_url}/activities/like-1"
    response = await post_signed(client, settings, actor, activity)
    assert response.status_code == 403
    assert await inbox_rows(database) == 0


async def test_blocked_domain_is_403_before_any_key_fetch(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    async with database.transaction() as session:
        session.add(BlockedDomain(domain=actor.host.address))
    response = await post_signed(client, settings, actor, like_of(actor, settings))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/domain-blocked")
    async with database.session() as session:
        assert (await session.execute(select(RemoteActor))).first() is None
    assert await inbox_rows(database) == 0


async def test_malformed_json_with_valid_signature_is_400(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = b'{"type": "Like", "actor": '
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")
    assert await inbox_rows(database) == 0


async def test_json_that_is_not_an_activity_is_400(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    body = json.dumps({"type": "Like", "actor": actor.id}).encode()  # no id
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 400
    assert await inbox_rows(database) == 0


async def test_oversize_body_is_413(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    activity = like_of(actor, settings)
    activity["padding"] = "x" * (settings.max_inbox_body_bytes + 1)
    response = await post_signed(client, settings, actor, activity)
    assert response.status_code == 413
    assert await inbox_rows(database) == 0


async def test_rotated_remote_key_is_fetched_again(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    assert (await post_signed(client, settings, actor, like_of(actor, settings))).status_code == 202
    actor.key = next(key for key in key_pool(4) if key.public_pem != actor.key.public_pem)
    response = await post_signed(client, settings, actor, like_of(actor, settings))
    assert response.status_code == 202
    async with database.session() as session:
        stored = (await session.execute(select(RemoteActor))).scalar_one()
    assert stored.public_key_pem == actor.key.public_pem
    assert await inbox_rows(database) == 2


async def test_a_key_is_fetched_again_at_most_once_a_minute(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    """Forged signatures naming a real key must not make the relay re-fetch it each time."""
    actor = fleet.actor(0, 0)
    pool = [key for key in key_pool(4) if key.public_pem != actor.key.public_pem]
    assert (await post_signed(client, settings, actor, like_of(actor, settings))).status_code == 202
    actor.key = pool[0]
    assert (await post_signed(client, settings, actor, like_of(actor, settings))).status_code == 202
    actor.key = pool[1]
    response = await post_signed(client, settings, actor, like_of(actor, settings))
    assert response.status_code == 401
    assert await inbox_rows(database) == 2


async def test_key_that_cannot_be_fetched_is_401(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    actor.gone = True
    response = await post_signed(client, settings, actor, like_of(actor, settings))
    assert response.status_code == 401
    assert response.json()["reason"] == "key_unavailable"
    assert await inbox_rows(database) == 0


async def test_self_delete_of_an_actor_never_seen_is_accepted_without_effect(
    client: httpx.AsyncClient, settings: Settings, database: Database, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    actor.gone = True
    response = await post_signed(client, settings, actor, activity_from(actor, "Delete", actor.id))
    assert response.status_code == 202
    assert await inbox_rows(database) == 0


async def test_activity_is_persisted_while_redis_is_down(
    settings: Settings, database: Database, fleet: Fleet, tmp_path: Path
) -> None:
    private_redis = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    private_redis.start()
    try:
        own = settings.model_copy(update={"redis_url": private_redis.url})
        async with relay_client(own) as client:
            private_redis.stop()
            actor = fleet.actor(0, 0)
            response = await post_signed(client, own, actor, like_of(actor, own))
    finally:
        private_redis.stop()
    assert response.status_code == 202
    async with database.session() as session:
        row = (await session.execute(select(InboxActivity))).scalar_one()
    assert row.state == "received"


async def test_api_starting_without_redis_still_accepts_activities(
    settings: Settings, database: Database, fleet: Fleet
) -> None:
    offline = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}"})
    async with relay_client(offline) as client:
        actor = fleet.actor(0, 0)
        response = await post_signed(client, offline, actor, like_of(actor, offline))
    assert response.status_code == 202
    assert await inbox_rows(database) == 1


async def test_client_over_its_rate_is_429(
    settings: Settings, database: Database, fleet: Fleet
) -> None:
    limited = settings.model_copy(
        update={"inbox_rate_limit_per_second": 0.01, "inbox_rate_limit_burst": 2}
    )
    async with relay_client(limited) as client:
        actor = fleet.actor(0, 0)
        statuses = [
            (await post_signed(client, limited, actor, like_of(actor, limited))).status_code
            for _ in range(3)
        ]
    assert statuses == [202, 202, 429]
    assert await inbox_rows(database) == 2
