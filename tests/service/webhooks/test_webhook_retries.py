"""A stored webhook whose processing keeps failing is retried with backoff a bounded number of
times, then marked failed (kept, with its last error), listed where failing things are listed,
and retried by an operator through the API, the dashboard or the CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bench.harness.webhook_senders import (
    cms_body,
    create_account,
    posts,
    send_cms,
    with_webhook_secrets,
)
from federation.activitypub.urls import InstanceUrls
from service.cli.commands import app as cli_app
from service.db.engine import Database
from service.db.models import WebhookEvent
from service.publishing.post_lifecycle import PostPublisher
from service.publishing.webhook_events import process_webhook_event, requeue_stale_events
from service.runtime.settings import Settings, get_settings
from tests.service.web.dashboard.test_dashboard import dashboard_csrf, log_in

BLOG = {"rules": [{"sources": ["cms"]}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings, webhook_max_retries=2)


@pytest.fixture
def broken_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishing raises, as a bug met by one event or a database hiccup would."""

    async def crash(self: PostPublisher, event: object) -> None:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(PostPublisher, "apply", crash)


async def stored_event(client, database: Database) -> WebhookEvent:
    response = await send_cms(client, cms_body())
    assert response.status_code == 202
    return await event_row(database, response.json()["event_id"])


async def event_row(database: Database, event_id: int) -> WebhookEvent:
    async with database.session() as session:
        return await session.get_one(WebhookEvent, event_id)


async def attempt(database: Database, settings: Settings, event_id: int, now: datetime):
    urls = InstanceUrls(settings.base_url)
    return await process_webhook_event(database, None, urls, settings, event_id, now=now)


async def fail_until_given_up(database: Database, settings: Settings, event_id: int) -> datetime:
    """Run every attempt the schedule allows, each when it is due; returns the last time."""
    now = datetime.now(UTC)
    for _ in range(settings.webhook_max_retries + 1):
        await attempt(database, settings, event_id, now)
        row = await event_row(database, event_id)
        now = (row.next_attempt_at or now) + timedelta(seconds=1)
    return now


async def test_a_failed_attempt_leaves_the_event_received_with_its_error_and_a_retry_time(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)
    now = datetime.now(UTC)

    result = await attempt(database, settings, event.id, now)
    row = await event_row(database, event.id)

    assert result is None
    assert (row.state, row.attempts) == ("received", 1)
    assert "renderer crashed" in (row.error or "")
    # The first retry of the delivery curve: 16 s, plus up to 10 % jitter.
    assert timedelta(seconds=16) <= row.next_attempt_at - now <= timedelta(seconds=17.6)


async def test_the_retry_waits_longer_after_each_failure(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)
    now = datetime.now(UTC)
    await attempt(database, settings, event.id, now)
    first_wait = (await event_row(database, event.id)).next_attempt_at - now
    later = now + first_wait + timedelta(seconds=1)
    await attempt(database, settings, event.id, later)
    second_wait = (await event_row(database, event.id)).next_attempt_at - later

    assert second_wait > first_wait
    assert second_wait >= timedelta(seconds=31)


async def test_an_event_is_not_attempted_again_before_its_retry_is_due(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)
    now = datetime.now(UTC)
    await attempt(database, settings, event.id, now)

    again = await attempt(database, settings, event.id, now + timedelta(seconds=5))

    assert again is None
    assert (await event_row(database, event.id)).attempts == 1


async def test_the_sweeper_re_enqueues_a_failed_event_only_once_its_retry_is_due(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)
    now = datetime.now(UTC) + timedelta(minutes=1)  # long after it arrived
    await attempt(database, settings, event.id, now)
    due_at = (await event_row(database, event.id)).next_attempt_at

    before = await requeue_stale_events(database, None, now=due_at - timedelta(seconds=1))
    after = await requeue_stale_events(database, None, now=due_at)

    assert (before, after) == (0, 1)


async def test_an_event_that_keeps_failing_is_marked_failed_after_its_last_retry(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)

    last = await fail_until_given_up(database, settings, event.id)
    row = await event_row(database, event.id)
    swept = await requeue_stale_events(database, None, now=last + timedelta(days=1))

    # The first attempt and webhook_max_retries (2) retries.
    assert (row.state, row.attempts) == ("failed", 3)
    assert "renderer crashed" in (row.error or "")
    assert swept == 0


async def test_a_failed_event_is_listed_by_the_monitoring_api_with_its_last_error(
    client, database, settings, broken_publisher, admin_headers
):
    event = await stored_event(client, database)
    await fail_until_given_up(database, settings, event.id)

    listed = await client.get("/api/admin/monitoring/webhooks/failed", headers=admin_headers)
    summary = await client.get("/api/admin/monitoring/webhooks", headers=admin_headers)

    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert listed.json()["total"] == 1
    assert (item["event_id"], item["source"], item["attempts"]) == (event.id, "cms", 3)
    assert "renderer crashed" in item["error"]
    assert summary.json()["failed"] == 1


async def test_an_operator_retries_a_failed_event_through_the_api_and_it_is_published(
    client, database, settings, broken_publisher, admin_headers, monkeypatch
):
    await create_account(database, "blog", routing=BLOG)
    event = await stored_event(client, database)
    await fail_until_given_up(database, settings, event.id)
    monkeypatch.undo()  # the bug is fixed

    response = await client.post(f"/api/admin/webhooks/{event.id}/retry", headers=admin_headers)
    retried = await event_row(database, event.id)
    result = await attempt(database, settings, event.id, datetime.now(UTC))

    assert response.status_code == 200
    assert response.json() == {"retried": 1}
    assert (retried.state, retried.attempts, retried.next_attempt_at) == ("received", 0, None)
    assert result is not None
    assert (await event_row(database, event.id)).state == "processed"
    assert len(await posts(database)) == 1


async def test_retrying_every_failed_event_at_once(
    client, database, settings, broken_publisher, admin_headers
):
    first = await stored_event(client, database)
    second = await stored_event(client, database)
    for event in (first, second):
        await fail_until_given_up(database, settings, event.id)

    response = await client.post(
        "/api/admin/webhooks/retry", json={"all": True}, headers=admin_headers
    )

    assert response.json() == {"retried": 2}
    assert {(await event_row(database, e.id)).state for e in (first, second)} == {"received"}


async def test_retrying_a_processed_event_is_a_409_problem(client, database, admin_headers):
    event = await stored_event(client, database)
    async with database.transaction() as session:
        (await session.get_one(WebhookEvent, event.id)).state = "processed"

    response = await client.post(f"/api/admin/webhooks/{event.id}/retry", headers=admin_headers)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["state"] == "processed"


async def test_retrying_an_unknown_event_is_a_404_problem(client, admin_headers):
    response = await client.post("/api/admin/webhooks/999/retry", headers=admin_headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_bulk_retry_must_name_a_source_or_all(client, admin_headers):
    response = await client.post("/api/admin/webhooks/retry", json={}, headers=admin_headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_retrying_needs_the_admin_token(client):
    response = await client.post("/api/admin/webhooks/retry", json={"all": True})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_dashboard_lists_a_failed_webhook_and_retries_it(
    client, database, settings, broken_publisher
):
    event = await stored_event(client, database)
    await fail_until_given_up(database, settings, event.id)
    await log_in(client)
    page = (await client.get("/ops")).text
    csrf = await dashboard_csrf(client)

    answer = await client.post(
        "/ops/actions/webhooks/retry", data={"csrf": csrf, "event_id": str(event.id)}
    )
    notice = (await client.get(answer.headers["location"])).text

    assert f'data-webhook-event="{event.id}"' in page
    assert "1 webhook(s) failed to process" in page
    assert answer.status_code == 303
    assert "Failed webhooks queued for processing again: 1" in notice
    assert (await event_row(database, event.id)).state == "received"


@pytest.fixture
def cli(database, monkeypatch):
    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.delenv("FEDIRELAY_REDIS_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli_app, list(args))
    get_settings.cache_clear()


async def test_the_cli_lists_failed_webhooks_and_retries_them(
    client, database, settings, broken_publisher, cli
):
    event = await stored_event(client, database)
    await fail_until_given_up(database, settings, event.id)

    # The CLI runs its own event loop, as it does from a shell.
    listed = await asyncio.to_thread(cli, "webhooks", "failed")
    retried = await asyncio.to_thread(cli, "webhooks", "retry", str(event.id), "--json")
    async with database.session() as session:
        state = await session.scalar(select(WebhookEvent.state).where(WebhookEvent.id == event.id))

    assert listed.exit_code == 0, listed.output
    assert f"{event.id}  cms published  attempts 3" in listed.output
    assert "renderer crashed" in listed.output
    assert retried.exit_code == 0, retried.output
    assert '"retried": 1' in retried.output
    assert state == "received"


def test_the_cli_retry_needs_exactly_one_selection(cli):
    result = cli("webhooks", "retry", "--all", "--source", "cms")

    assert result.exit_code == 2
    assert "exactly one" in result.output
