"""The claim window: a process holds at most `delivery_concurrency` claimed deliveries whose
outcome is not committed, so a crash can repeat at most that many."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bench.harness.delivery_scenarios import (
    create_account,
    delivery_states,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
)
from bench.harness.fleet import Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery
from service.db.transactions import Transactions
from service.delivery.engine import DeliveryEngine, OutcomeWriter, _Run, utcnow
from service.delivery.signed_posts import InboxPoster, inbox_connections
from service.delivery.store import Outcome
from service.delivery.tracking import ClaimWindow, HostSlots
from service.runtime.settings import Settings

WINDOW = 4


async def test_a_reservation_takes_at_most_what_is_free() -> None:
    window = ClaimWindow(10)

    assert await window.reserve(6, 1) == 6
    assert await window.reserve(6, 1) == 4
    assert window.free == 0


async def test_a_reservation_waits_until_its_minimum_is_free() -> None:
    window = ClaimWindow(10)
    await window.reserve(10, 10)
    waiting = asyncio.create_task(window.reserve(8, 3))
    await asyncio.sleep(0)
    window.release(2)
    await asyncio.sleep(0)
    assert not waiting.done()

    window.release(2)

    assert await asyncio.wait_for(waiting, 1) == 4
    assert window.free == 0


async def test_a_cancelled_reservation_gives_its_room_back() -> None:
    window = ClaimWindow(4)
    await window.reserve(4, 4)
    waiting = asyncio.create_task(window.reserve(4, 2))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    window.release(4)

    assert window.free == 4
    assert window.waiting == 0


async def test_a_reservation_cancelled_as_room_comes_back_ends_cancelled() -> None:
    window = ClaimWindow(4)
    await window.reserve(4, 4)
    waiting = asyncio.create_task(window.reserve(4, 2))
    await asyncio.sleep(0)
    waiting.cancel()
    # The release passes over the cancelled waiter before its task has run again.
    window.release(4)

    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert window.free == 4
    assert window.waiting == 0


async def test_a_waiting_reservation_is_admitted_once_enough_room_would_come_back() -> None:
    window = ClaimWindow(10)
    await window.reserve(10, 10)
    assert not window.admits_after(10)  # nobody waits

    waiting = asyncio.create_task(window.reserve(8, 3))
    await asyncio.sleep(0)

    assert not window.admits_after(2)
    assert window.admits_after(3)
    waiting.cancel()


def _deferred_outcome(delivery_id: int) -> Outcome:
    return Outcome(
        delivery_id, "a.example", "https://a.example/inbox", None, "pending", 0, utcnow()
    )


async def _writer_with_a_waiting_claim(
    database: Database, minimum: int
) -> tuple[OutcomeWriter, asyncio.Task[int], asyncio.Task[None]]:
    window = ClaimWindow(8)
    await window.reserve(8, 8)
    # Lingers so long that only a commit worth making can happen within the test.
    writer = OutcomeWriter(Transactions(database), window, linger=60, linger_window_full=60)
    running = asyncio.create_task(writer.run())
    claim = asyncio.create_task(window.reserve(8, minimum))
    await asyncio.sleep(0)
    return writer, claim, running


async def test_outcomes_too_few_to_let_a_waiting_claim_go_are_not_committed_yet(
    database: Database,
) -> None:
    writer, claim, running = await _writer_with_a_waiting_claim(database, minimum=3)
    run = _Run({}, utcnow())

    for delivery_id in (1, 2):
        writer.add(_deferred_outcome(delivery_id), run)
    await asyncio.sleep(0.05)

    assert writer.flushes == 0
    assert not claim.done()
    claim.cancel()
    running.cancel()
    await writer.transactions.close()


async def test_outcomes_are_committed_as_soon_as_they_let_a_waiting_claim_go(
    database: Database,
) -> None:
    writer, claim, running = await _writer_with_a_waiting_claim(database, minimum=3)
    run = _Run({}, utcnow())

    for delivery_id in (1, 2, 3):
        writer.add(_deferred_outcome(delivery_id), run)

    assert await asyncio.wait_for(claim, 10) == 3
    assert writer.flushes == 1
    running.cancel()
    await writer.transactions.close()


async def test_a_host_with_all_slots_taken_and_a_backlog_is_saturated() -> None:
    slots = HostSlots(per_host=1)
    await slots.acquire("busy.example")
    waiters = [asyncio.create_task(slots.acquire("busy.example")) for _ in range(2)]
    await asyncio.sleep(0)

    assert slots.saturated(backlog=2) == ["busy.example"]
    assert slots.saturated(backlog=3) == []
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    slots.release("busy.example")
    assert len(slots) == 0


async def _count_in_flight(database: Database) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.state == "in_flight")
        )
    return int(count or 0)


async def test_rows_in_flight_never_exceed_the_window_across_concurrent_activities(
    database: Database, settings: Settings
) -> None:
    settings = fast_settings(settings, delivery_concurrency=WINDOW, delivery_batch_size=WINDOW)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    http = inbox_connections(test_mode=True, concurrency=WINDOW, per_host=2)
    engine = DeliveryEngine(settings, database, None, InboxPoster(http, test_mode=True))
    peak = 0
    async with Fleet(hosts=30, followers=1) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        activity_ids = [
            (await publish(database, account, note_activity(urls, account))).activity_row_id
            for _ in range(4)
        ]
        fan_out = asyncio.gather(*(engine.deliver_activity(i) for i in activity_ids))
        while not fan_out.done():
            peak = max(peak, await _count_in_flight(database))
            await asyncio.sleep(0.002)
        attempted = await fan_out
    await engine.close()
    await http.close()

    assert attempted == [30, 30, 30, 30]
    assert await delivery_states(database) == {"delivered": 120}
    assert 0 < peak <= WINDOW


async def test_the_outcome_writer_stops_when_cancelled_as_its_linger_ends(
    database: Database,
) -> None:
    writer = OutcomeWriter(Transactions(database), ClaimWindow(8), linger=0.002)
    for attempt in range(60):
        running = asyncio.create_task(writer.run())
        writer._ready.set()  # nothing to commit: the loop only lingers, again and again
        await asyncio.sleep(0.002 + (attempt % 4) * 0.0005)
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=1.0)
        assert done, "the writer kept running after it was cancelled"
