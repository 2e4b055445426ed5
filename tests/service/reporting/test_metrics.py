"""`/metrics`: Prometheus exposition computed from the database, moving with real deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.fleet_faults import Fault
from bench.harness.relay_harness import asgi_client, running_worker
from federation.activitypub.urls import InstanceUrls
from service.app import create_app
from service.db.engine import Database
from service.reporting.metrics import METRIC_NAMES, MetricsExporter
from service.runtime.settings import Settings
from service.webhooks.intake import close_webhook_writer, store_webhook_event

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def metrics_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        # No scrape cache: each scrape in these tests must see the database as it is now.
        app.state.metrics_exporter = MetricsExporter(app.state.database, cache_seconds=0)
        yield http


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_expose_every_listed_family_with_prometheus_content_type(
    metrics_client: httpx.AsyncClient,
) -> None:
    response = await metrics_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    # The parser strips _total from counter family names; compare on the base names.
    expected = {name.removesuffix("_total") for name in METRIC_NAMES}
    assert expected <= names


async def test_metrics_need_no_admin_token_and_carry_no_per_host_labels(
    metrics_client: httpx.AsyncClient,
) -> None:
    samples = await scrape(metrics_client)

    label_names = {name for (_, labels) in samples for name, _ in labels}
    assert label_names <= {
        "source",
        "outcome",
        "reason",
        "type",
        "state",
        "health",
        "kind",
        "version",
        "python",
        "le",
    }
    assert value(
        samples,
        "fedirelay_build_info",
        version="0.1.0",
        python=__import__("platform").python_version(),
    ) in (0.0, 1.0)
    assert any(name == "fedirelay_build_info" for name, _ in samples)


async def test_scrapes_are_cached_briefly_so_bursts_cost_one_query_round(
    database: Database,
) -> None:
    exporter = MetricsExporter(database, cache_seconds=60)
    first = await exporter.body()
    await create_account(database)
    second = await exporter.body()

    assert first == second


async def test_every_metric_moves_during_a_fanout_with_failing_hosts(
    database: Database, settings: Settings, metrics_client: httpx.AsyncClient
) -> None:
    settings = fast_settings(settings, delivery_max_retries=2)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)
    before = await scrape(metrics_client)
    async with Fleet(hosts=4, followers=2) as fleet:
        trust_account_key(fleet, account, urls)
        followers = await follow_from_fleet(database, account, fleet)
        await fleet.inject(Fault.server_error(), hosts=fleet.hosts[:2])
        intake_state = SimpleNamespace()
        await store_webhook_event(
            intake_state,
            database,
            source="cms",
            key="post-1",
            event_type="post.published",
            headers={},
            body=b"{}",
        )
        await close_webhook_writer(intake_state)
        published = await publish(database, account, note_activity(urls, account), queue)
        queued = await scrape(metrics_client)
        async with running_worker(settings):
            await wait_until_finished(database, published.activity_row_id, timeout=60)
        after = await scrape(metrics_client)
    await queue.close()

    assert value(before, "fedirelay_followers", state="accepted") == 0
    assert value(queued, "fedirelay_followers", state="accepted") == followers == 8
    assert value(queued, "fedirelay_webhooks_received_total", source="cms", outcome="received") == 1
    assert value(queued, "fedirelay_activities_published_total", type="Create") == 1
    # Published but not yet picked up: four shared inboxes wait for a worker.
    assert value(queued, "fedirelay_delivery_queue_depth", state="ready") == 4
    assert value(queued, "fedirelay_delivery_oldest_ready_age_seconds") >= 0
    assert value(after, "fedirelay_delivery_queue_depth", state="ready") == 0
    assert value(after, "fedirelay_delivery_queue_depth", state="dead") == 2
    assert value(after, "fedirelay_delivery_attempts_total", outcome="delivered") == 2
    # Each failing inbox: the first try and two retries, all answered 500.
    assert value(after, "fedirelay_delivery_attempts_total", outcome="retryable") == 6
    assert value(after, "fedirelay_delivery_duration_seconds_count") == 8
    assert value(after, "fedirelay_delivery_duration_seconds_bucket", le="+Inf") == 8
    assert value(after, "fedirelay_delivery_duration_seconds_sum") > 0
    assert value(after, "fedirelay_destination_hosts", health="failing") == 2
    assert value(after, "fedirelay_destination_hosts", health="unavailable") == 0
    assert value(after, "fedirelay_metrics_scrape_duration_seconds") > 0


async def test_oldest_ready_age_grows_while_no_worker_runs(
    database: Database, settings: Settings, metrics_client: httpx.AsyncClient
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    async with Fleet(hosts=1, followers=1) as fleet:
        await follow_from_fleet(database, account, fleet)
        await publish(database, account, note_activity(urls, account))
        first = await scrape(metrics_client)
        await asyncio.sleep(1.1)
        second = await scrape(metrics_client)

    assert value(second, "fedirelay_delivery_queue_depth", state="ready") == 1
    assert (
        value(second, "fedirelay_delivery_oldest_ready_age_seconds")
        >= value(first, "fedirelay_delivery_oldest_ready_age_seconds") + 1
    )
