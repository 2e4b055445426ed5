"""Small versions of the fan-out benchmark and of two fault drills, so a regression in
delivery correctness shows in the test suite. They start real processes (the relay's API and
worker, a private redis-server, a fleet of fake servers) and take about a minute together.
The full-size runs are `make bench` and `make drills`; no figure is asserted here."""

from __future__ import annotations

import pytest

from bench.bench_fanout import throughput
from bench.drill_fanout_faults import redis_flush, worker_kill

pytestmark = pytest.mark.slow


def _explain(report: dict[str, object]) -> str:
    return f"{report['checks']} {report['figures']} {report['error']}"


async def test_a_fanout_reaches_every_host_once_with_verified_signatures() -> None:
    figures = await throughput(hosts=20, posts=5, workers=1, timeout=60, ceiling_seconds=0.1)

    assert figures["delivered"] == figures["expected"] == 100
    assert figures["duplicates"] == 0
    assert figures["unverified"] == 0


async def test_a_worker_killed_mid_fanout_loses_nothing_after_restart() -> None:
    report = await worker_kill(hosts=50, posts=10, strike_at=0.2, timeout=60, lease_seconds=12)

    assert report["verdict"] == "pass", _explain(report)
    figures = report["figures"]
    assert isinstance(figures, dict)
    assert figures["arrived_when_killed"] < figures["expected"], "the kill came too late"


async def test_redis_flushed_mid_fanout_loses_nothing_once_the_sweeper_runs() -> None:
    report = await redis_flush(hosts=10, posts=60, strike_at=0.1, timeout=60)

    assert report["verdict"] == "pass", _explain(report)
