"""Order: activities about one object reach each inbox in the order they were published."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import select

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
from bench.harness.fleet import Fault, Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Activity, Delivery, DeliveryAttempt
from service.runtime.settings import Settings


def _order_at(fleet: Fleet, host_index: int) -> list[str | None]:
    domain = fleet.hosts[host_index].domain
    return [a.activity_type for a in fleet.arrivals if a.host == domain and a.verified]


async def test_an_update_waits_for_its_create_while_the_create_is_retried(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings, delivery_retry_time_scale=0.01)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=3, followers=1) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        await fleet.inject(Fault.fail_first(3, inbox_only=True), hosts=[0])
        create = note_activity(urls, account, "Create")
        object_id = create["object"]["id"]
        update = note_activity(urls, account, "Update", object_id)
        delete = note_activity(urls, account, "Delete", object_id)
        async with delivery_worker(settings):
            await publish(database, account, create, queue, ordering_key=object_id)
            await asyncio.sleep(0.3)
            await publish(database, account, update, queue, ordering_key=object_id)
            await publish(database, account, delete, queue, ordering_key=object_id)
            await wait_until_finished(database, timeout=40)
        for host_index in range(3):
            assert _order_at(fleet, host_index) == ["Create", "Update", "Delete"]
    await queue.close()

    async with database.session() as session:
        later_attempts = (
            await session.scalars(
                select(DeliveryAttempt.status_code)
                .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                .join(Activity, Activity.id == Delivery.activity_id)
                .where(
                    Delivery.host == fleet.hosts[0].domain,
                    Activity.activity_uri.in_([update["id"], delete["id"]]),
                )
            )
        ).all()
    # The Update and Delete were tried once each, only after their Create got through.
    assert later_attempts == [202, 202]


async def test_activities_about_different_objects_do_not_wait_for_each_other(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings, delivery_retry_time_scale=1.0)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=1, followers=1) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        await fleet.inject(Fault.fail_first(1, inbox_only=True), hosts=[0])
        first = note_activity(urls, account)
        second = note_activity(urls, account)
        async with delivery_worker(settings):
            await publish(database, account, first, queue, ordering_key=first["object"]["id"])
            await asyncio.sleep(0.5)
            await publish(database, account, second, queue, ordering_key=second["object"]["id"])
            # The first now waits ~16 s for its retry; the second is not held back by it.
            await fleet.wait_for(second["id"], count=1, timeout=10)
        assert fleet.deliveries_for(first["id"]) == []
    await queue.close()
