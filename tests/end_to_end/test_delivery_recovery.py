"""Nothing is lost when a worker is killed or Redis forgets its queue mid-fan-out."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    delivery_states,
    delivery_worker,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.relay_harness import WorkerProcess
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.runtime.settings import Settings

pytestmark = pytest.mark.slow

ACTIVITIES = 30


async def _wait_for_arrivals(fleet: Fleet, count: int, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while len(fleet.arrivals) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(fleet.arrivals)} arrivals")
        await asyncio.sleep(0.01)


def _verified_pairs(fleet: Fleet) -> set[tuple[str | None, str]]:
    return {(a.activity_id, a.inbox_url) for a in fleet.arrivals if a.verified}


async def test_a_worker_killed_mid_fan_out_loses_nothing_and_repeats_at_most_its_in_flight(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings, delivery_lease_seconds=4.0)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    first = WorkerProcess(settings)
    second = WorkerProcess(settings)
    async with Fleet(hosts=100, followers=1) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        documents = [note_activity(urls, account) for _ in range(ACTIVITIES)]
        for document in documents:
            await publish(database, account, document, queue)
        try:
            first.start()
            await _wait_for_arrivals(fleet, 200, timeout=60)
            first.kill()
            in_flight_at_kill = (await delivery_states(database)).get("in_flight", 0)
            second.start()
            states = await wait_until_finished(database, timeout=90)
        finally:
            first.kill()
            second.stop()
        duplicates = fleet.duplicates()
        delivered_pairs = _verified_pairs(fleet)
    await queue.close()

    assert states == {"delivered": ACTIVITIES * 100}
    assert len(delivered_pairs) == ACTIVITIES * 100
    assert sum(count - 1 for count in duplicates.values()) <= in_flight_at_kill


async def test_flushing_redis_mid_fan_out_loses_nothing_and_repeats_nothing(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=50, followers=1) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        async with delivery_worker(settings):
            for _ in range(ACTIVITIES):
                await publish(database, account, note_activity(urls, account), queue)
            await _wait_for_arrivals(fleet, 100, timeout=60)
            await redis.flushall()
            states = await wait_until_finished(database, timeout=90)
        duplicates = fleet.duplicates()
        delivered_pairs = _verified_pairs(fleet)
    await queue.close()

    assert states == {"delivered": ACTIVITIES * 50}
    assert len(delivered_pairs) == ACTIVITIES * 50
    assert duplicates == {}
