"""Backfill: a new follower receives the account's latest posts right after the Accept."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from bench.harness.delivery_scenarios import (
    connect_queue,
    fast_settings,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet, FleetActor
from bench.harness.relay_harness import running_worker
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Account, Activity, Delivery, InboxActivity
from service.inbox.processing import InboxProcessor
from service.publishing.activity_records import PublishedActivity, enqueue_deliveries
from service.remote.documents import RemoteDocumentFetcher
from service.runtime.settings import Settings
from tests.federation_peers import activity_from, create_account, create_post, post_signed


async def _follow_and_process(
    client: httpx.AsyncClient, database: Database, settings: Settings, actor: FleetActor
) -> None:
    follow = activity_from(actor, "Follow", f"{settings.base_url}/users/news")
    assert (await post_signed(client, settings, actor, follow)).status_code == 202
    fetcher = RemoteDocumentFetcher.from_settings(settings)

    async def fetch(url: str) -> dict[str, Any]:
        return (await fetcher.fetch(url)).document

    processor = InboxProcessor(database, InstanceUrls(settings.base_url), fetch)
    async with database.session() as session:
        row_ids = (await session.execute(select(InboxActivity.id))).scalars().all()
    for row_id in row_ids:
        assert await processor.process(row_id) == "processed"
    await fetcher.aclose()


async def _sent(database: Database) -> list[tuple[str, str, str | None]]:
    async with database.session() as session:
        rows = await session.execute(
            select(Activity.activity_type, Delivery.inbox, Delivery.ordering_key)
            .join(Delivery, Delivery.activity_id == Activity.id)
            .order_by(Activity.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _with_backfill(database: Database, count: int) -> Account:
    account = await create_account(database, "news")
    async with database.transaction() as session:
        stored = await session.get(Account, account.id)
        assert stored is not None
        stored.backfill_count = count
    return account


async def test_new_follower_gets_the_latest_posts_after_the_accept(
    client: httpx.AsyncClient, database: Database, settings: Settings
):
    account = await _with_backfill(database, 2)
    posts = [await create_post(database, settings, account) for _ in range(3)]
    async with Fleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        actor = fleet.actor()
        await _follow_and_process(client, database, settings, actor)
    sent = await _sent(database)
    assert [kind for kind, _, _ in sent] == ["Accept", "Create", "Create"]
    assert {inbox for _, inbox, _ in sent} == {actor.inbox}
    assert {key for _, _, key in sent} == {f"follow:{actor.id}"}
    async with database.session() as session:
        objects = (
            (
                await session.execute(
                    select(Activity.document)
                    .where(Activity.activity_type == "Create")
                    .order_by(Activity.id)
                )
            )
            .scalars()
            .all()
        )
    # The two newest posts, oldest of them first.
    assert [document["object"]["id"] for document in objects] == [
        posts[1].object_uri,
        posts[2].object_uri,
    ]


async def test_without_backfill_only_the_accept_is_sent(
    client: httpx.AsyncClient, database: Database, settings: Settings
):
    account = await _with_backfill(database, 0)
    await create_post(database, settings, account)
    async with Fleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        await _follow_and_process(client, database, settings, fleet.actor())
    assert [kind for kind, _, _ in await _sent(database)] == ["Accept"]


async def test_backfilled_posts_arrive_after_the_accept(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
):
    settings = fast_settings(settings)
    account = await _with_backfill(database, 3)
    for _ in range(3):
        await create_post(database, settings, account)
    queue = await connect_queue(settings)
    async with Fleet(hosts=1, followers=1, key_pool_size=1) as fleet, running_worker(settings):
        trust_account_key(fleet, account, InstanceUrls(settings.base_url))
        actor = fleet.actor()
        await _follow_and_process(client, database, settings, actor)
        async with database.session() as session:
            activity_ids = (await session.execute(select(Activity.id))).scalars().all()
        await enqueue_deliveries(queue, [PublishedActivity(i, "", 1) for i in activity_ids])
        await wait_until_finished(database)
        arrivals = [a for a in fleet.arrivals if a.inbox_url == actor.inbox]
    await queue.close()
    assert [a.activity_type for a in arrivals] == ["Accept", "Create", "Create", "Create"]
    assert all(a.verified for a in arrivals)


async def test_admin_api_sets_the_backfill_count(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    await create_account(database, "news")
    response = await client.put(
        "/api/admin/accounts/news/backfill", json={"count": 4}, headers=admin_headers
    )
    assert response.json() == {"account": "news", "backfill_count": 4}
    too_many = await client.put(
        "/api/admin/accounts/news/backfill", json={"count": 500}, headers=admin_headers
    )
    assert too_many.status_code == 422
