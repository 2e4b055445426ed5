"""From an accepted webhook to the fediverse: first-inbox latency and shared-inbox fan-out.

Both send a signed CMS webhook to ``/hooks/cms`` (stored before the 202, then rendered and
published by the worker) and time from the 202 arriving to arrivals at the fleet.

    python -m bench.bench_latency latency --samples 40
    python -m bench.bench_latency shared --hosts 1000 --followers 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp

from bench.bench_fanout import FleetHandle, fleet_process
from bench.harness.fleet_observer import ArrivalSummary, arrivals_since, wait_for_verified
from bench.harness.relay_process import RelayProcesses
from bench.harness.webhook_client import CMS_SETTINGS, cms_published, send_cms_webhook
from bench.relay_load import insert_followers


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


async def webhook_to_arrivals(
    http: aiohttp.ClientSession,
    relay: RelayProcesses,
    fleet: FleetHandle,
    expected: int,
    timeout: float,  # noqa: ASYNC109
) -> dict[str, Any]:
    state = await fleet.remote.state()
    before, verified_before = int(state["arrivals"]), int(state["verified"])
    status, accepted_at, answer = await send_cms_webhook(
        http, relay.base_url, cms_published(relay.handle, f"post {time.time_ns()}")
    )
    if status != 202:
        raise RuntimeError(f"webhook answered {status}: {answer}")
    reached, _ = await wait_for_verified(
        fleet.remote, verified_before + expected, timeout, poll=0.005
    )
    summary = ArrivalSummary.of(await arrivals_since(fleet.remote, before))
    return {
        "reached": reached,
        "delivered": summary.distinct,
        "duplicates": summary.duplicates,
        "first_ms": None
        if summary.first_at is None
        else round((summary.first_at - accepted_at) * 1000, 1),
        "last_ms": None
        if summary.last_at is None
        else round((summary.last_at - accepted_at) * 1000, 1),
    }


async def latency(
    samples: int = 40,
    hosts: int = 1,
    pause: float = 0.3,
    worker_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Idle relay: one webhook at a time, ``pause`` seconds apart."""
    async with (
        fleet_process(hosts, 1) as fleet,
        RelayProcesses(settings=CMS_SETTINGS, worker_overrides=worker_overrides) as relay,
        aiohttp.ClientSession() as http,
    ):
        await insert_followers(relay, fleet.hosts, 1)
        await webhook_to_arrivals(http, relay, fleet, hosts, 30)  # warm-up
        firsts: list[float] = []
        for _ in range(samples):
            await asyncio.sleep(pause)
            result = await webhook_to_arrivals(http, relay, fleet, hosts, 30)
            if result["first_ms"] is not None:
                firsts.append(result["first_ms"])
    return {
        "samples": len(firsts),
        "requested": samples,
        "p50_ms": round(statistics.median(firsts), 1) if firsts else None,
        "p99_ms": round(percentile(firsts, 0.99), 1) if firsts else None,
        "max_ms": round(max(firsts), 1) if firsts else None,
        "min_ms": round(min(firsts), 1) if firsts else None,
    }


async def shared_inbox(
    hosts: int = 1000,
    followers: int = 10,
    timeout: float = 60.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """``hosts`` × ``followers`` followers behind shared inboxes: one delivery per host."""
    async with (
        fleet_process(hosts, followers) as fleet,
        RelayProcesses(settings=CMS_SETTINGS) as relay,
        aiohttp.ClientSession() as http,
    ):
        inserted = await insert_followers(relay, fleet.hosts, followers)
        warm = await webhook_to_arrivals(http, relay, fleet, hosts, timeout)
        await asyncio.sleep(1.0)
        measured = await webhook_to_arrivals(http, relay, fleet, hosts, timeout)
    return {
        "hosts": hosts,
        "followers": inserted,
        "deliveries": measured["delivered"],
        "duplicates": measured["duplicates"],
        "complete": measured["reached"] and measured["delivered"] == hosts,
        "seconds_to_first": None if measured["first_ms"] is None else measured["first_ms"] / 1000,
        "seconds_to_last": None if measured["last_ms"] is None else measured["last_ms"] / 1000,
        "cold_seconds_to_last": None if warm["last_ms"] is None else warm["last_ms"] / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_latency")
    parser.add_argument("mode", choices=["latency", "shared"])
    parser.add_argument("--samples", type=int)
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--followers", type=int)
    parser.add_argument("--worker-overrides", type=json.loads, help="arq options (JSON)")
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "mode" and v is not None}
    runner = latency if args.mode == "latency" else shared_inbox
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
