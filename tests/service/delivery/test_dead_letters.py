"""Dead letters: listed with their history, retried or discarded, by API and by CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bench.harness.delivery_scenarios import (
    create_account,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
)
from bench.harness.fleet import Fault, Fleet
from bench.harness.relay_harness import settings_env
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery
from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, inbox_connections
from service.runtime.settings import Settings


class DeadLetters:
    """Three servers; the first refuses every delivery with 400 until told otherwise."""

    def __init__(self, database: Database, settings: Settings, fleet: Fleet) -> None:
        self.database = database
        self.settings = fast_settings(settings)
        self.fleet = fleet
        self.urls = InstanceUrls(settings.base_url)
        self.http = inbox_connections(test_mode=True, concurrency=16, per_host=4)
        self.engine = DeliveryEngine(
            self.settings, database, None, InboxPoster(self.http, test_mode=True)
        )
        self.activity_ids: list[int] = []

    @property
    def refusing_host(self) -> str:
        return self.fleet.hosts[0].domain

    async def setup(self, activities: int = 2) -> None:
        account = await create_account(self.database, "news")
        trust_account_key(self.fleet, account, self.urls)
        await follow_from_fleet(self.database, account, self.fleet)
        await self.fleet.inject(Fault.server_error(400, inbox_only=True), hosts=[0])
        for _ in range(activities):
            published = await publish(self.database, account, note_activity(self.urls, account))
            self.activity_ids.append(published.activity_row_id)
            await self.engine.deliver_activity(published.activity_row_id)

    async def deliver_again(self) -> None:
        for activity_id in self.activity_ids:
            await self.engine.deliver_activity(activity_id)

    async def states(self) -> dict[int, str]:
        async with self.database.session() as session:
            rows = await session.execute(select(Delivery.id, Delivery.state))
            return dict(rows.all())

    async def close(self) -> None:
        await self.engine.close()
        await self.http.close()


@pytest.fixture
async def letters(database: Database, settings: Settings) -> AsyncIterator[DeadLetters]:
    async with Fleet(hosts=3, followers=1) as fleet:
        scenario = DeadLetters(database, settings, fleet)
        await scenario.setup()
        yield scenario
        await scenario.close()


async def _dead(client: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> Any:
    answer = await client.get("/api/admin/deliveries/dead", params=query, headers=headers)
    assert answer.status_code == 200
    return answer.json()


async def test_dead_letters_are_listed_with_their_error_and_attempts(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    dead = await _dead(client, admin_headers)
    assert len(dead) == 2
    assert {d["host"] for d in dead} == {letters.refusing_host}
    assert dead[0]["last_status"] == 400
    assert dead[0]["attempt_history"][0]["status"] == 400
    assert dead[0]["attempt_history"][0]["duration_ms"] is not None


async def test_dead_letters_can_be_filtered_by_account_activity_and_host(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    first = letters.activity_ids[0]
    assert len(await _dead(client, admin_headers, account="news")) == 2
    assert len(await _dead(client, admin_headers, account="other")) == 0
    assert [d["activity_id"] for d in await _dead(client, admin_headers, activity_id=first)] == [
        first
    ]
    assert len(await _dead(client, admin_headers, host=letters.fleet.hosts[1].domain)) == 0


async def test_a_retried_dead_letter_is_delivered_once_the_server_accepts(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    dead = await _dead(client, admin_headers)
    await letters.fleet.clear_faults()
    answer = await client.post(
        f"/api/admin/deliveries/{dead[0]['id']}/retry", headers=admin_headers
    )
    await letters.deliver_again()
    states = await letters.states()
    assert answer.status_code == 200
    assert states[dead[0]["id"]] == "delivered"
    assert states[dead[1]["id"]] == "dead"


async def test_all_dead_letters_of_a_host_can_be_retried_at_once(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await letters.fleet.clear_faults()
    answer = await client.post(
        "/api/admin/deliveries/retry", json={"host": letters.refusing_host}, headers=admin_headers
    )
    await letters.deliver_again()
    assert answer.json() == {"activities": 2}
    assert set((await letters.states()).values()) == {"delivered"}


async def test_a_discarded_dead_letter_leaves_the_list(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    dead = await _dead(client, admin_headers)
    answer = await client.post(
        f"/api/admin/deliveries/{dead[0]['id']}/discard", headers=admin_headers
    )
    assert answer.status_code == 200
    assert [d["id"] for d in await _dead(client, admin_headers)] == [dead[1]["id"]]


async def test_a_delivered_delivery_cannot_be_discarded(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    delivered = next(i for i, s in (await letters.states()).items() if s == "delivered")
    answer = await client.post(f"/api/admin/deliveries/{delivered}/discard", headers=admin_headers)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_bulk_operation_needs_exactly_one_selection(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    answer = await client.post("/api/admin/deliveries/retry", json={}, headers=admin_headers)
    assert answer.status_code == 422


async def test_the_delivery_record_of_an_activity_shows_every_inbox_and_attempt(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    activity_id = letters.activity_ids[0]
    answer = await client.get(
        f"/api/admin/activities/{activity_id}/deliveries", headers=admin_headers
    )
    record = answer.json()
    assert record["states"] == {"delivered": 2, "dead": 1}
    delivered = [d for d in record["deliveries"] if d["state"] == "delivered"]
    assert all(d["latency_ms"] is not None for d in delivered)
    assert all(len(d["attempt_history"]) == 1 for d in record["deliveries"])


async def test_unknown_deliveries_and_activities_are_404_problems(
    letters: DeadLetters, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    missing = await client.post("/api/admin/deliveries/999999/retry", headers=admin_headers)
    record = await client.get("/api/admin/activities/999999/deliveries", headers=admin_headers)
    assert missing.status_code == 404 and record.status_code == 404


async def _cli(settings: Settings, *args: str) -> Any:
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.cli", "queue", *args, "--json"],
        env=settings_env(settings),
        capture_output=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return json.loads(completed.stdout)


async def test_the_cli_shows_status_and_dead_letters(letters: DeadLetters) -> None:
    status = await _cli(letters.settings, "status")
    dead = await _cli(letters.settings, "dead", "--host", letters.refusing_host)
    assert status["states"]["dead"] == 2 and status["states"]["delivered"] == 4
    assert len(dead) == 2


async def test_the_cli_retries_and_discards(letters: DeadLetters) -> None:
    dead = await _cli(letters.settings, "dead")
    discarded = await _cli(letters.settings, "discard", str(dead[0]["id"]))
    retried = await _cli(letters.settings, "retry", "--all")
    states = await letters.states()
    assert discarded == {"discarded": 1}
    assert retried == {"activities": 1}
    assert states[dead[0]["id"]] == "discarded"
    assert states[dead[1]["id"]] == "pending"
