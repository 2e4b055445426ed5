"""Webhooks refused before storage are counted by source and reason, in /metrics and the
monitoring API, across API processes, and written in batches rather than per request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from bench.harness.relay_harness import asgi_client
from bench.harness.webhook_senders import (
    cms_body,
    payload,
    send_cms,
    send_forgejo,
    with_webhook_secrets,
)
from service.app import create_app
from service.db.engine import Database
from service.db.models import WebhookRejection
from service.reporting.metrics import MetricsExporter
from service.runtime.settings import Settings
from service.webhooks.rejections import RejectionCounter
from tests.service.reporting.test_metrics import scrape, value

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings, max_webhook_body_bytes=4096)


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        app.state.metrics_exporter = MetricsExporter(app.state.database, cache_seconds=0)
        yield app, http


@pytest.fixture
async def relay(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(settings) as running:
        yield running


async def flushed_scrape(app: FastAPI, client: httpx.AsyncClient) -> dict[Any, float]:
    await app.state.rejection_counter.flush()
    return await scrape(client)


async def stored_counts(database: Database) -> dict[tuple[str, str], int]:
    async with database.session() as session:
        rows = await session.execute(
            select(WebhookRejection.source, WebhookRejection.reason, WebhookRejection.count)
        )
        return {(source, reason): count for source, reason, count in rows}


async def test_a_wrong_signature_is_counted_as_a_signature_rejection_of_its_source(relay):
    app, client = relay
    response = await client.post(
        "/hooks/forgejo",
        content=payload("forgejo_release_published.json"),
        headers={"x-forgejo-event": "release", "x-forgejo-signature": "0" * 64},
    )

    samples = await flushed_scrape(app, client)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="forgejo", reason="signature")
        == 1
    )


async def test_a_missing_signature_is_counted_as_a_signature_rejection(relay):
    app, client = relay
    await client.post("/hooks/github", content=b"{}", headers={"x-github-event": "release"})

    samples = await flushed_scrape(app, client)

    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="github", reason="signature")
        == 1
    )


async def test_a_body_that_is_not_json_is_counted_as_malformed(relay):
    app, client = relay
    response = await send_cms(client, b"{not json")

    samples = await flushed_scrape(app, client)

    assert response.status_code == 400
    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="cms", reason="malformed") == 1
    )


async def test_invalid_fields_are_counted_as_invalid_fields(relay):
    app, client = relay
    response = await send_cms(client, cms_body(title=None, url="not a url"))

    samples = await flushed_scrape(app, client)

    assert response.status_code == 422
    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="cms", reason="invalid_fields")
        == 1
    )


async def test_a_body_over_the_limit_is_counted_as_too_large(relay):
    app, client = relay
    response = await send_cms(client, cms_body(body="x" * 8000))

    samples = await flushed_scrape(app, client)

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="cms", reason="too_large") == 1
    )


async def test_a_path_that_names_no_source_is_counted_under_unknown(relay):
    app, client = relay
    response = await client.post("/hooks/gitlab", content=b"{}")

    samples = await flushed_scrape(app, client)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert (
        value(
            samples, "fedirelay_webhooks_rejected_total", source="unknown", reason="unknown_source"
        )
        == 1
    )


async def test_accepted_and_ignored_webhooks_are_not_counted_as_rejected(relay):
    app, client = relay
    accepted = await send_cms(client, cms_body())
    ignored = await send_forgejo(client, "push", b"{}")

    await app.state.rejection_counter.flush()

    assert (accepted.status_code, ignored.status_code) == (202, 202)
    assert await stored_counts(app.state.database) == {}


async def test_rejections_wait_in_memory_until_the_next_flush(relay):
    app, client = relay
    for _ in range(3):
        await send_cms(client, b"{not json")

    before = await stored_counts(app.state.database)
    await app.state.rejection_counter.flush()
    after = await stored_counts(app.state.database)

    assert before == {}
    assert after == {("cms", "malformed"): 3}


async def test_a_flood_of_rejections_is_written_in_one_statement(relay):
    app, client = relay
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "webhook_rejections" in statement:
            statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        for _ in range(40):
            await send_cms(client, b"{not json")
        for _ in range(10):
            await send_forgejo(client, "release", b"[1, 2")
        written_during_the_flood = len(statements)
        await app.state.rejection_counter.flush()
    finally:
        event.remove(engine, "before_cursor_execute", note)

    assert written_during_the_flood == 0
    assert len(statements) == 1
    assert await stored_counts(app.state.database) == {
        ("cms", "malformed"): 40,
        ("forgejo", "malformed"): 10,
    }


async def test_counts_of_several_api_processes_add_up_in_every_scrape(settings, database):
    async with running_app(settings) as (first_app, first), running_app(settings) as (_, second):
        await send_cms(first, b"{not json")
        await send_cms(second, b"{not json")
        await send_cms(second, b"{not json")
    # Shutting an API process down writes what it counted.
    async with running_app(settings) as (_, third):
        samples = await scrape(third)

    assert (
        value(samples, "fedirelay_webhooks_rejected_total", source="cms", reason="malformed") == 3
    )


async def test_the_counter_writes_by_itself_every_few_seconds(database):
    counter = RejectionCounter(database, flush_seconds=0.05)
    counter.start()
    try:
        counter.record("ghost", "signature")
        for _ in range(100):
            if await stored_counts(database):
                break
            await asyncio.sleep(0.02)
    finally:
        await counter.close()

    assert await stored_counts(database) == {("ghost", "signature"): 1}


async def test_counts_stay_pending_while_the_database_cannot_take_them():
    # Nothing listens on port 1: every connection is refused.
    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/relay")
    counter = RejectionCounter(unreachable)
    counter.record("cms", "signature")
    try:
        written = await counter.flush()
    finally:
        await unreachable.dispose()

    assert written == 0
    assert counter.pending == {("cms", "signature"): 1}


async def test_the_monitoring_api_reports_rejections_by_source_and_reason(relay, admin_headers):
    app, client = relay
    await send_cms(client, b"{not json")
    await client.post("/hooks/ghost", content=b"{}")
    await app.state.rejection_counter.flush()

    summary = await client.get("/api/admin/monitoring/webhooks", headers=admin_headers)
    overview = await client.get("/api/admin/monitoring/overview", headers=admin_headers)

    assert summary.status_code == 200
    assert summary.json()["rejected"] == {"cms": {"malformed": 1}, "ghost": {"signature": 1}}
    assert overview.json()["webhooks"]["rejected"] == summary.json()["rejected"]
