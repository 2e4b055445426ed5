"""Host health: the circuit breaker, Mastodon's dead-server rule, and parking deliveries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

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
from bench.harness.fleet import Fleet
from federation.activitypub.urls import InstanceUrls
from federation.peers.host_health import (
    HEALTHY,
    Admission,
    HostHealth,
    HostPolicy,
    admission,
    record_failure,
    record_success,
    take_probe,
)
from service.db.engine import Database
from service.db.models import Delivery, DestinationHost
from service.delivery.hosts import mark_host_reachable
from service.delivery.tracking import HostHealthTracker
from service.runtime.settings import Settings

POLICY = HostPolicy(breaker_threshold=3, breaker_cooloff_seconds=60.0)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _fail(health: HostHealth, times: int, now: datetime = NOW) -> HostHealth:
    """`times` failures: the burst that opens the breaker, then failed probes."""
    for _ in range(times):
        probe = health.consecutive_failures >= POLICY.breaker_threshold
        health = record_failure(health, now, POLICY, probe=probe)
    return health


def test_a_healthy_host_is_attempted() -> None:
    assert admission(HEALTHY, NOW, POLICY) is Admission.ALLOW


def test_a_few_failures_do_not_open_the_breaker() -> None:
    assert admission(_fail(HEALTHY, 2), NOW, POLICY) is Admission.ALLOW


def test_a_burst_of_failures_opens_the_breaker_for_the_cool_off() -> None:
    health = _fail(HEALTHY, 3)
    assert admission(health, NOW + timedelta(seconds=59), POLICY) is Admission.WAIT
    assert health.breaker_open_until == NOW + timedelta(seconds=60)


def test_after_the_cool_off_one_probe_goes_and_the_rest_wait() -> None:
    health = _fail(HEALTHY, 3)
    later = NOW + timedelta(seconds=61)
    assert admission(health, later, POLICY) is Admission.PROBE
    held = take_probe(health, later, POLICY)
    assert admission(held, later, POLICY) is Admission.WAIT


def test_a_failed_probe_doubles_the_cool_off() -> None:
    health = _fail(HEALTHY, 4)
    assert health.breaker_open_until == NOW + timedelta(seconds=120)


def test_requests_in_flight_when_the_breaker_opened_do_not_extend_the_cool_off() -> None:
    health = _fail(HEALTHY, 3)
    for _ in range(5):
        health = record_failure(health, NOW + timedelta(seconds=1), POLICY)
    assert health.consecutive_failures == 3
    assert health.breaker_open_until == NOW + timedelta(seconds=60)


def test_the_cool_off_never_exceeds_its_ceiling() -> None:
    health = _fail(HEALTHY, 40)
    assert health.breaker_open_until == NOW + timedelta(seconds=POLICY.breaker_max_cooloff_seconds)


def test_a_success_closes_the_breaker_and_forgets_the_failures() -> None:
    assert record_success(_fail(HEALTHY, 5)) == HEALTHY


def test_failures_on_six_days_keep_a_host_available() -> None:
    health = HEALTHY
    for day in range(6):
        health = record_failure(health, NOW + timedelta(days=day), POLICY)
    assert not health.unavailable


def test_failures_on_seven_distinct_days_make_a_host_unavailable() -> None:
    health = HEALTHY
    for day in range(7):
        health = record_failure(health, NOW + timedelta(days=day), POLICY)
    assert health.unavailable
    assert admission(health, NOW + timedelta(days=30), POLICY) is Admission.PARKED


def test_many_failures_on_one_day_count_as_one_day() -> None:
    health = _fail(HEALTHY, 50)
    assert health.failure_days == ("2025-03-01",)
    assert not health.unavailable


def test_the_tracker_forgets_the_least_recently_used_hosts_beyond_its_bound() -> None:
    tracker = HostHealthTracker(POLICY, max_hosts=3)
    for number in range(10):
        tracker.failed(f"host{number}.example", NOW)
    assert len(tracker) == 3
    assert tracker.get("host0.example") == HEALTHY
    assert tracker.get("host9.example").consecutive_failures == 1


async def _state_becomes(database: Database, host: str, state: str) -> bool:
    for _ in range(100):
        async with database.session() as session:
            current = await session.scalar(select(Delivery.state).where(Delivery.host == host))
        if current == state:
            return True
        await asyncio.sleep(0.05)
    return False


def _unavailable_row(host: str) -> DestinationHost:
    days = [(NOW - timedelta(days=n)).date().isoformat() for n in range(7)]
    return DestinationHost(
        host=host, health="unavailable", failure_days=days, consecutive_failures=40
    )


async def test_deliveries_to_an_unavailable_host_are_parked_not_attempted(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=2, followers=1) as fleet:
        dead_host = fleet.hosts[0].domain
        async with database.transaction() as session:
            session.add(_unavailable_row(dead_host))
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        document = note_activity(urls, account)
        async with delivery_worker(settings):
            await publish(database, account, document, queue)
            await fleet.wait_for(document["id"], count=1, timeout=10)
            assert await _state_becomes(database, dead_host, "parked")
            assert [a.host for a in fleet.arrivals] == [fleet.hosts[1].domain]

            # A verified activity from that host arrives: its deliveries go out again.
            async with database.transaction() as session:
                woken = await mark_host_reachable(session, dead_host)
            assert woken
            await fleet.wait_for(document["id"], count=2, timeout=15)
            states = await wait_until_finished(database, timeout=10)
    await queue.close()
    assert states == {"delivered": 2}
    async with database.session() as session:
        row = await session.get(DestinationHost, dead_host)
        assert row is not None and row.health == "ok" and row.failure_days == []


async def test_a_paused_host_makes_its_deliveries_wait_without_failing(
    database: Database, settings: Settings, redis: Redis
) -> None:
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    async with Fleet(hosts=2, followers=1) as fleet:
        paused_host = fleet.hosts[0].domain
        async with database.transaction() as session:
            session.add(DestinationHost(host=paused_host, paused=True))
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        document = note_activity(urls, account)
        async with delivery_worker(settings):
            await publish(database, account, document, queue)
            await fleet.wait_for(document["id"], count=1, timeout=10)
            async with database.session() as session:
                waiting = await session.scalar(select(Delivery).where(Delivery.host == paused_host))
            assert waiting is not None
            assert waiting.state == "pending" and waiting.attempts == 0

            async with database.transaction() as session:
                row = await session.get(DestinationHost, paused_host)
                assert row is not None
                row.paused = False
            # The sweeper notices within seconds.
            await fleet.wait_for(document["id"], count=2, timeout=15)
    await queue.close()
