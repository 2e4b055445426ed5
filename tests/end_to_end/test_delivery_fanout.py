"""Fan-out: every follower's server receives each activity once, signed and verified."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from sqlalchemy import insert, select

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    delivery_worker,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery, DeliveryAttempt, Follower
from service.publishing.activity_records import follower_inboxes
from service.runtime.settings import Settings


async def test_followers_on_one_server_share_one_delivery(
    database: Database, settings: Settings, redis: Redis
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    async with Fleet(hosts=3, followers=5) as fleet:
        trust_account_key(fleet, account, urls)
        followers = await follow_from_fleet(database, account, fleet)
        document = note_activity(urls, account)
        published = await publish(database, account, document)

        assert followers == 15
        assert published.delivery_count == 3
        async with database.session() as session:
            inboxes = (await session.scalars(select(Delivery.inbox))).all()
        assert sorted(inboxes) == sorted(fleet.shared_inboxes)


async def test_every_server_receives_the_activity_signed_and_verified(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=20, followers=2) as fleet, delivery_worker(settings):
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        document = note_activity(urls, account)
        published = await publish(database, account, document, queue)

        arrivals = await fleet.wait_for(document["id"], count=20, timeout=20)
        states = await wait_until_finished(database, published.activity_row_id)

    await queue.close()
    assert states == {"delivered": 20}
    assert all(arrival.verified for arrival in arrivals)
    assert fleet.signature_failures == 0
    assert not fleet.duplicates()
    assert arrivals[0].activity == document


async def test_delivered_rows_record_latency_and_one_attempt(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=2, followers=1) as fleet, delivery_worker(settings):
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        published = await publish(database, account, note_activity(urls, account), queue)
        await wait_until_finished(database, published.activity_row_id)
    await queue.close()

    async with database.session() as session:
        deliveries = (await session.scalars(select(Delivery))).all()
        attempts = (await session.scalars(select(DeliveryAttempt))).all()
    assert all(d.state == "delivered" and d.attempts == 1 for d in deliveries)
    assert all(d.latency_ms is not None and 0 <= d.latency_ms < 10_000 for d in deliveries)
    assert all(d.delivered_at is not None and d.lease_expires_at is None for d in deliveries)
    assert sorted(a.status_code for a in attempts) == [202, 202]
    assert all(a.duration_ms is not None for a in attempts)


async def test_a_slow_server_does_not_delay_the_others(
    database: Database, settings: Settings, redis: Redis
) -> None:
    from bench.harness.fleet import Fault

    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=10, followers=1) as fleet, delivery_worker(settings):
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        # The first server accepts, then takes 8 s to finish its answer.
        await fleet.inject(Fault.slow_body(byte_interval=1.0, body_bytes=8), hosts=[0])
        document = note_activity(urls, account)
        started = time.monotonic()
        await publish(database, account, document, queue)
        arrivals = await fleet.wait_for(document["id"], count=10, timeout=20)
        others = [a for a in arrivals if a.host != fleet.hosts[0].domain]
        assert len(others) == 9
        assert max(a.arrived_at for a in others) - started < 3.0
    await queue.close()


async def test_followers_without_a_shared_inbox_are_reached_at_their_own_inbox_in_follow_order(
    database: Database, settings: Settings
) -> None:
    account = await create_account(database)
    rows = [
        ("https://b.example/users/1", "https://b.example/users/1/inbox", ""),
        ("https://a.example/users/1", "https://a.example/users/1/inbox", "https://a.example/inbox"),
        ("https://a.example/users/2", "https://a.example/users/2/inbox", "https://a.example/inbox"),
        ("https://c.example/users/1", "https://c.example/users/1/inbox", None),
    ]
    async with database.transaction() as session:
        await session.execute(
            insert(Follower),
            [
                {
                    "account_id": account.id,
                    "actor_uri": actor,
                    "host": actor.split("/")[2],
                    "inbox": inbox,
                    "shared_inbox": shared,
                    "state": "accepted",
                }
                for actor, inbox, shared in rows
            ],
        )
    async with database.session() as session:
        inboxes = await follower_inboxes(session, account.id)
    assert inboxes == [
        "https://b.example/users/1/inbox",
        "https://a.example/inbox",
        "https://c.example/users/1/inbox",
    ]
