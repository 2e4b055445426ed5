"""Prometheus metrics, computed from the database at scrape time.

Why from the database: the relay runs as several uvicorn processes and separate worker
processes (often in separate pods). In-process counters would be split between them and lost
on every restart; the database already records every webhook, activity and delivery attempt,
so each scrape, whichever process answers it, returns the same cluster-wide figures:

* gauges (queue depth by state, oldest ready age, hosts by health, followers, scheduled
  posts) are aggregates over the current rows;
* counters are row counts of append-only tables (`webhook_events`, `activities`,
  `delivery_attempts`, `interactions`), and the latency histogram is bucketed over
  `delivery_attempts.duration_ms`. Refused webhooks leave no row, so each API process adds
  its in-memory counts of them to `webhook_rejections` every few seconds
  (service.webhooks.rejections); that counter is the table's sums. Pruning old rows makes a
  counter go down; Prometheus reads that as a counter reset, so prune rarely and in bulk.

Labels are bounded sets (source, state, outcome, reason, activity type, health); never an
inbox, host or actor.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import Database
from service.db.models import Activity, DeliveryAttempt, Interaction, Post
from service.reporting.queries import (
    attempt_outcome,
    follower_counts,
    host_health_counts,
    queue_depth,
    rejected_webhook_counts,
    stored_webhook_counts,
    utcnow,
)

# Seconds; the top buckets matter because slow inboxes are what fills the queue.
LATENCY_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Concurrent scrapes (several Prometheus replicas, a curious operator) share one computation.
CACHE_SECONDS: Final = 2.0

METRIC_NAMES: Final = (
    "fedirelay_build_info",
    "fedirelay_webhooks_received_total",
    "fedirelay_webhooks_rejected_total",
    "fedirelay_activities_published_total",
    "fedirelay_delivery_attempts_total",
    "fedirelay_delivery_duration_seconds",
    "fedirelay_delivery_queue_depth",
    "fedirelay_delivery_oldest_ready_age_seconds",
    "fedirelay_destination_hosts",
    "fedirelay_followers",
    "fedirelay_scheduled_posts",
    "fedirelay_interactions_total",
    "fedirelay_metrics_scrape_duration_seconds",
)


def _version() -> str:
    try:
        return metadata.version("fedirelay")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Snapshot(Collector):
    """A collector that hands out metric families computed beforehand (asynchronously)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


async def _webhooks(session: AsyncSession) -> list[Metric]:
    received = CounterMetricFamily(
        "fedirelay_webhooks_received",
        "Webhooks accepted and stored, by source and processing outcome.",
        labels=["source", "outcome"],
    )
    for source, states in (await stored_webhook_counts(session)).items():
        for state, count in states.items():
            received.add_metric([source, state], count)
    rejected = CounterMetricFamily(
        "fedirelay_webhooks_rejected",
        "Webhook requests refused before storage, by source and reason (counted in memory by "
        "each API process and written every few seconds).",
        labels=["source", "reason"],
    )
    for source, reasons in (await rejected_webhook_counts(session)).items():
        for reason, count in reasons.items():
            rejected.add_metric([source, reason], count)
    return [received, rejected]


async def _activities(session: AsyncSession) -> Metric:
    family = CounterMetricFamily(
        "fedirelay_activities_published",
        "Activities published (Create, Update, Delete, Accept, ...), by type.",
        labels=["type"],
    )
    rows = await session.execute(
        select(Activity.activity_type, func.count()).group_by(Activity.activity_type)
    )
    for activity_type, count in rows:
        family.add_metric([activity_type or "unknown"], count)
    return family


async def _attempts(session: AsyncSession) -> list[Metric]:
    attempts = CounterMetricFamily(
        "fedirelay_delivery_attempts",
        "Delivery attempts by outcome: delivered, retryable, rejected, gone, network_error.",
        labels=["outcome"],
    )
    rows = await session.execute(
        select(DeliveryAttempt.status_code, func.count()).group_by(DeliveryAttempt.status_code)
    )
    outcomes = dict.fromkeys(("delivered", "retryable", "rejected", "gone", "network_error"), 0)
    for status, count in rows:
        outcomes[attempt_outcome(status)] += int(count)
    for outcome, count in outcomes.items():
        attempts.add_metric([outcome], count)

    duration = DeliveryAttempt.duration_ms
    bucket_columns = [
        func.sum(case((duration <= bound * 1000, 1), else_=0)) for bound in LATENCY_BUCKETS
    ]
    row = (
        await session.execute(
            select(func.count(duration), func.sum(duration), *bucket_columns).where(
                duration.is_not(None)
            )
        )
    ).one()
    total, total_ms, *cumulative = row
    histogram = HistogramMetricFamily(
        "fedirelay_delivery_duration_seconds",
        "Time from sending a delivery to the inbox's answer (or the error).",
    )
    buckets = [
        (str(bound), int(count or 0))
        for bound, count in zip(LATENCY_BUCKETS, cumulative, strict=True)
    ]
    buckets.append(("+Inf", int(total or 0)))
    histogram.add_metric([], buckets, sum_value=float(total_ms or 0) / 1000)
    return [attempts, histogram]


async def _queue(session: AsyncSession, now: datetime) -> list[Metric]:
    depth = await queue_depth(session, now)
    gauge = GaugeMetricFamily(
        "fedirelay_delivery_queue_depth",
        "Unfinished deliveries by state: ready, scheduled, in_flight, retrying, parked, dead.",
        labels=["state"],
    )
    for state, count in depth.counts.items():
        gauge.add_metric([state], count)
    oldest = GaugeMetricFamily(
        "fedirelay_delivery_oldest_ready_age_seconds",
        "How long the longest-waiting due delivery has waited for a worker (0 when none).",
        value=depth.oldest_ready_age_seconds,
    )
    return [gauge, oldest]


async def _hosts(session: AsyncSession, now: datetime) -> Metric:
    gauge = GaugeMetricFamily(
        "fedirelay_destination_hosts",
        "Destination hosts by health (ok, failing, unavailable) and paused or breaker_open.",
        labels=["health"],
    )
    for health, count in (await host_health_counts(session, now)).items():
        gauge.add_metric([health], count)
    return gauge


async def _audience(session: AsyncSession) -> list[Metric]:
    followers = GaugeMetricFamily(
        "fedirelay_followers", "Followers of all accounts, by state.", labels=["state"]
    )
    for state, count in (await follower_counts(session)).items():
        followers.add_metric([state], count)
    scheduled = (
        await session.execute(
            select(func.count()).select_from(Post).where(Post.state == "scheduled")
        )
    ).scalar_one()
    interactions = CounterMetricFamily(
        "fedirelay_interactions",
        "Likes, boosts and replies received on published posts.",
        labels=["kind"],
    )
    rows = await session.execute(select(Interaction.kind, func.count()).group_by(Interaction.kind))
    for kind, count in rows:
        interactions.add_metric([kind], count)
    return [
        followers,
        GaugeMetricFamily(
            "fedirelay_scheduled_posts",
            "Posts waiting for their publication time.",
            value=scheduled,
        ),
        interactions,
    ]


def _build_info() -> Metric:
    info = GaugeMetricFamily(
        "fedirelay_build_info",
        "Version of the running relay (always 1).",
        labels=["version", "python"],
    )
    info.add_metric([_version(), platform.python_version()], 1)
    return info


async def collect_families(database: Database) -> list[Metric]:
    """Every metric family, read in one read-only transaction."""
    started = time.perf_counter()
    now = utcnow()
    async with database.session() as session:
        families: list[Metric] = [_build_info()]
        families.extend(await _webhooks(session))
        families.append(await _activities(session))
        families.extend(await _attempts(session))
        families.extend(await _queue(session, now))
        families.append(await _hosts(session, now))
        families.extend(await _audience(session))
    families.append(
        GaugeMetricFamily(
            "fedirelay_metrics_scrape_duration_seconds",
            "Time the last scrape spent querying the database.",
            value=time.perf_counter() - started,
        )
    )
    return families


def render(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


@dataclass
class _Cached:
    body: bytes
    at: float


class MetricsExporter:
    """Renders `/metrics`; one per app, caching a few seconds to absorb bursts of scrapes."""

    def __init__(self, database: Database, cache_seconds: float = CACHE_SECONDS) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self._cached: _Cached | None = None
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached.at < self.cache_seconds:
                return self._cached.body
            body = render(await collect_families(self.database))
            self._cached = _Cached(body, time.monotonic())
            return body
