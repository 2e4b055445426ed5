"""One delivery job for many activities: a burst of one-delivery activities (the Accepts of
many Follows) shares a job's claims, commits and wake-ups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    delivery_states,
    fast_settings,
    note_activity,
    publish,
    trust_account_key,
)
from bench.harness.fleet import Fault, Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Account
from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, inbox_connections
from service.publishing.activity_records import FANOUT_BATCH, enqueue_fanout, fanout_job_id
from service.runtime.settings import Settings


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with Fleet(hosts=3, followers=2) as fleet:
        yield fleet


@pytest.fixture
async def engine(settings: Settings, database: Database) -> AsyncIterator[DeliveryEngine]:
    # Retries far in the future: a failed delivery stays put until the test looks at it.
    slow_retries = fast_settings(settings, delivery_retry_time_scale=10.0)
    http = inbox_connections(test_mode=True, concurrency=16, per_host=4)
    queue = await connect_queue(settings)
    engine = DeliveryEngine(slow_retries, database, queue, InboxPoster(http, test_mode=True))
    yield engine
    await engine.close()
    await http.close()
    await queue.close()


async def publish_to_each_actor(
    database: Database, account: Account, fleet: Fleet, urls: InstanceUrls
) -> list[tuple[int, str]]:
    """One activity per fleet actor, addressed to that actor's own inbox (like an Accept)."""
    published = []
    for actor in fleet.followers:
        document = note_activity(urls, account)
        item = await publish(database, account, document, audience=[actor.inbox])
        published.append((item.activity_row_id, str(document["id"])))
    return published


async def test_one_job_delivers_every_activity_it_is_given(
    engine: DeliveryEngine, database: Database, settings: Settings, fleet: Fleet
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    trust_account_key(fleet, account, urls)
    published = await publish_to_each_actor(database, account, fleet, urls)

    attempted = await engine.deliver_activities([row_id for row_id, _ in published])

    assert attempted == len(published) == 6
    for _, activity_id in published:
        [arrival] = fleet.deliveries_for(activity_id)
        assert arrival.verified
    assert await delivery_states(database) == {"delivered": 6}


async def test_activities_of_a_paused_account_are_left_out_of_a_batch(
    engine: DeliveryEngine, database: Database, settings: Settings, fleet: Fleet
) -> None:
    urls = InstanceUrls(settings.base_url)
    active = await create_account(database, "news")
    paused = await create_account(database, "quiet")
    trust_account_key(fleet, active, urls)
    inbox = [fleet.followers[0].inbox]
    kept = await publish(database, active, note_activity(urls, active), audience=inbox)
    held = await publish(database, paused, note_activity(urls, paused), audience=inbox)
    async with database.transaction() as session:
        await session.execute(update(Account).where(Account.id == paused.id).values(paused=True))

    await engine.deliver_activities([kept.activity_row_id, held.activity_row_id])

    assert await delivery_states(database, kept.activity_row_id) == {"delivered": 1}
    assert await delivery_states(database, held.activity_row_id) == {"pending": 1}


async def test_retries_of_a_batch_are_woken_by_one_deferred_job(
    engine: DeliveryEngine,
    database: Database,
    settings: Settings,
    fleet: Fleet,
    redis: Redis,
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    trust_account_key(fleet, account, urls)
    await fleet.inject(Fault.server_error(503, inbox_only=True))
    published = await publish_to_each_actor(database, account, fleet, urls)
    await redis.flushall()

    await engine.deliver_activities([row_id for row_id, _ in published])

    assert await delivery_states(database) == {"retrying": 6}
    wake_jobs = [key async for key in redis.scan_iter(f"arq:job:{settings.queue_name}:fanout:*")]
    assert len(wake_jobs) == 1
    assert await redis.zcard(settings.queue_name) == 1


async def test_large_sets_of_activities_are_split_into_jobs_of_bounded_size(
    settings: Settings, redis: Redis
) -> None:
    queue = await connect_queue(settings)
    try:
        queued = await enqueue_fanout(queue, range(1, FANOUT_BATCH * 2 + 2))
    finally:
        await queue.close()
    assert queued == 3
    keys = [key async for key in redis.scan_iter(f"arq:job:{settings.queue_name}:fanout:*")]
    assert len(keys) == 3


def test_fanout_job_ids_name_the_activities_they_cover() -> None:
    assert fanout_job_id([7]) == "fanout:7"
    assert fanout_job_id([7, 9, 12], "sweep:3") == "fanout:7-12x3:sweep:3"
