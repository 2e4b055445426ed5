"""Retries: transient failures are retried until delivered, permanent ones stop at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
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
from bench.harness.fleet import Fault, FaultKind, Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery, DeliveryAttempt, Follower
from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, inbox_connections
from service.runtime.settings import Settings


async def _attempts(database: Database, host: str) -> list[DeliveryAttempt]:
    async with database.session() as session:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.host == host)
            .order_by(DeliveryAttempt.id)
        )
        return list(rows.all())


async def _delivery(database: Database, host: str) -> Delivery:
    async with database.session() as session:
        found = await session.scalar(select(Delivery).where(Delivery.host == host))
        assert found is not None
        return found


async def _run_one_activity(
    database: Database, settings: Settings, fleet: Fleet, *faults: tuple[Fault, int]
) -> dict[str, object]:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    trust_account_key(fleet, account, urls)
    await follow_from_fleet(database, account, fleet)
    for fault, host_index in faults:
        await fleet.inject(fault, hosts=[host_index])
    document = note_activity(urls, account)
    async with delivery_worker(settings):
        await publish(database, account, document, queue)
        await wait_until_finished(database, timeout=30)
    await queue.close()
    return document


async def test_a_server_failing_its_first_requests_gets_the_activity_after_retries(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    async with Fleet(hosts=3, followers=1) as fleet:
        failing = fleet.hosts[0].domain
        document = await _run_one_activity(
            database, settings, fleet, (Fault.fail_first(3, inbox_only=True), 0)
        )
        assert len(fleet.deliveries_for(document["id"])) == 3

    delivery = await _delivery(database, failing)
    attempts = await _attempts(database, failing)
    assert delivery.state == "delivered"
    assert delivery.attempts == 4
    assert [a.status_code for a in attempts] == [500, 500, 500, 202]


async def test_a_server_answering_gone_loses_its_followers_and_is_not_retried(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    async with Fleet(hosts=3, followers=2) as fleet:
        gone = fleet.hosts[0].domain
        await _run_one_activity(database, settings, fleet, (Fault.gone(inbox_only=True), 0))

    delivery = await _delivery(database, gone)
    async with database.session() as session:
        hosts = (await session.scalars(select(Follower.host))).all()
    assert delivery.state == "dead" and delivery.attempts == 1
    assert delivery.last_status == 410
    assert gone not in hosts
    assert len(hosts) == 4


async def test_a_client_error_is_permanent(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    async with Fleet(hosts=2, followers=1) as fleet:
        refusing = fleet.hosts[0].domain
        await _run_one_activity(
            database, settings, fleet, (Fault.fail_first(5, status=400, inbox_only=True), 0)
        )
    delivery = await _delivery(database, refusing)
    assert delivery.state == "dead" and delivery.attempts == 1
    assert delivery.last_error is not None and "400" in delivery.last_error


async def test_a_server_that_never_recovers_ends_as_a_dead_letter_with_its_history(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings, delivery_max_retries=3)
    async with Fleet(hosts=2, followers=1) as fleet:
        broken = fleet.hosts[0].domain
        await _run_one_activity(
            database, settings, fleet, (Fault.server_error(503, inbox_only=True), 0)
        )
    delivery = await _delivery(database, broken)
    attempts = await _attempts(database, broken)
    assert delivery.state == "dead"
    assert delivery.attempts == 4
    assert delivery.last_error is not None and "retries exhausted" in delivery.last_error
    assert [a.status_code for a in attempts] == [503, 503, 503, 503]


async def test_retry_after_is_honoured(
    database: Database, settings: Settings, redis: Redis
) -> None:
    # 1500 s asked, scaled by the test clock (x0.001) to 1.5 s.
    settings = fast_settings(settings)
    limited = Fault(
        FaultKind.FAIL_FIRST, status=429, retry_after="1500", first_n=1, inbox_only=True
    )
    async with Fleet(hosts=1, followers=1) as fleet:
        host = fleet.hosts[0].domain
        await _run_one_activity(database, settings, fleet, (limited, 0))
    attempts = await _attempts(database, host)
    assert [a.status_code for a in attempts] == [429, 202]
    assert attempts[1].attempted_at - attempts[0].attempted_at >= timedelta(seconds=1.5)


@pytest.mark.parametrize(
    "inbox",
    [
        "https://127.0.0.1:{port}/inbox",
        "https://localhost:{port}/inbox",
        "http://127.0.0.1:{port}/inbox",
    ],
)
async def test_a_private_address_inbox_is_refused_outside_test_mode(
    database: Database, settings: Settings, inbox: str
) -> None:
    production = settings.model_copy(update={"test_mode": False})
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    async with Fleet(hosts=1, followers=1) as fleet:
        target = inbox.format(port=fleet.port)
        published = await publish(
            database, account, note_activity(urls, account), audience=[target]
        )
        session = inbox_connections(test_mode=False, concurrency=4, per_host=2)
        engine = DeliveryEngine(production, database, None, InboxPoster(session, test_mode=False))
        try:
            await engine.deliver_activity(published.activity_row_id)
        finally:
            await session.close()
        assert fleet.arrivals == []

    delivery = await _delivery(database, target.split("/")[2])
    assert delivery.state == "dead"
    assert delivery.last_error is not None and delivery.last_error.startswith("refused")
