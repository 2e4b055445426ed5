"""Fan-out benchmarks: throughput per worker, shared-inbox fan-out, cost per host.

The fleet runs in its own process (``python -m bench.harness.fleet``) and verifies every
signature; the relay runs as an API process and N worker processes. Followers are
inserted in bulk; posts are published with the relay's publishing path and enqueued.
Time runs from the commit of the posts to the last verified arrival at the fleet.

    python -m bench.bench_fanout throughput --hosts 200 --posts 50 --workers 1
    python -m bench.bench_fanout shared --hosts 1000 --followers 10
    python -m bench.bench_fanout host-cost --hosts 1000 --followers 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.harness.fleet_control import RemoteFleet, SpawnedFleet, spawn_fleet
from bench.harness.fleet_observer import ArrivalSummary, arrivals_since, wait_for_verified
from bench.harness.relay_process import RelayProcesses
from bench.machine_ceiling import signing_ceiling
from bench.profiling import hot_spots, sampled
from bench.relay_load import insert_followers, publish_posts


@dataclass
class FleetHandle:
    spawned: SpawnedFleet
    remote: RemoteFleet

    @property
    def hosts(self) -> list[str]:
        return list(self.spawned.ready["hosts"])


@contextlib.asynccontextmanager
async def fleet_process(hosts: int, followers: int, *extra: str) -> AsyncIterator[FleetHandle]:
    spawned = await spawn_fleet(
        "--hosts", str(hosts), "--followers", str(followers), "--max-seconds", "1200", *extra,
        ready_timeout=120,
    )  # fmt: skip
    try:
        async with RemoteFleet(spawned.control_url) as remote:
            yield FleetHandle(spawned, remote)
    finally:
        await spawned.stop()


async def timed_fanout(
    relay: RelayProcesses,
    fleet: FleetHandle,
    posts: int,
    timeout: float,  # noqa: ASYNC109
    profile: Path | None = None,
) -> dict[str, Any]:
    """Publish ``posts`` posts to every follower, wait for every delivery, return figures.

    With ``profile``, the first worker is sampled by py-spy for the measured window."""
    before = int((await fleet.remote.state())["arrivals"])
    verified_before = int((await fleet.remote.state())["verified"])
    cpu_before = {w.name: w.cpu_seconds() for w in relay.live_workers()}
    others_before = other_cpu(relay, fleet)
    with sampled(relay.workers[0].pid if profile else None, profile):
        batch = await publish_posts(relay, posts)
        expected = batch.delivery_count
        reached, verified = await wait_for_verified(
            fleet.remote, verified_before + expected, timeout
        )
        finished = time.monotonic()
    cpu_used = sum(w.cpu_seconds() - cpu_before.get(w.name, 0.0) for w in relay.live_workers())
    others = {
        k: round(v - others_before.get(k, 0.0), 2) for k, v in other_cpu(relay, fleet).items()
    }
    summary = ArrivalSummary.of(await arrivals_since(fleet.remote, before), batch.activity_ids)
    last = summary.last_at if summary.last_at is not None else finished
    elapsed = max(last - batch.committed_at, 1e-9)
    return {
        "expected": expected,
        "delivered": summary.distinct,
        "duplicates": summary.duplicates,
        "unverified": summary.unverified,
        "complete": reached and summary.distinct == expected,
        "seconds_to_last": round(elapsed, 3),
        "seconds_to_first": None
        if summary.first_at is None
        else round(summary.first_at - batch.committed_at, 4),
        "deliveries_per_second": round(summary.distinct / elapsed, 1),
        "worker_cpu_seconds": round(cpu_used, 2),
        "deliveries_per_worker_cpu_second": round(summary.distinct / cpu_used, 1)
        if cpu_used > 0
        else None,
        "fleet_verified_total": verified,
        "other_cpu_seconds": others,
    }


def other_cpu(relay: RelayProcesses, fleet: FleetHandle) -> dict[str, float]:
    """CPU seconds of everything else sharing the machine's cores during a run."""
    seconds = {"fleet": process_cpu_seconds(fleet.spawned.process.pid)}
    if relay.api is not None:
        seconds["api"] = relay.api.cpu_seconds()
    if relay.redis_server.process is not None:
        seconds["redis"] = process_cpu_seconds(relay.redis_server.process.pid)
    if relay.postgres is not None:
        seconds["postgres"] = relay.postgres.cpu_seconds()
    seconds["bench"] = process_cpu_seconds(os.getpid())
    return seconds


def process_cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


async def throughput(
    hosts: int = 200,
    posts: int = 50,
    workers: int = 1,
    database: str = "sqlite",
    timeout: float = 180.0,  # noqa: ASYNC109
    profile: Path | None = None,
    ceiling_seconds: float = 0.7,
) -> dict[str, Any]:
    """Deliveries/s with ``workers`` worker processes against the single-core signing rate."""
    ceiling = await asyncio.to_thread(signing_ceiling, 3, ceiling_seconds)
    async with (
        fleet_process(hosts, 1) as fleet,
        RelayProcesses(workers=workers, database=database) as relay,  # type: ignore[arg-type]
    ):
        await insert_followers(relay, fleet.hosts, 1)
        # One small post first so keys are fetched and connections open: the steady state
        # is what a busy relay lives in.
        await timed_fanout(relay, fleet, 1, 60)
        figures = await timed_fanout(relay, fleet, posts, timeout, profile)
        figures["rss_mb"] = {k: round(v / 2**20, 1) for k, v in relay.rss_bytes().items()}
    if profile is not None:
        figures["worker_hot_spots"] = hot_spots(profile, 25).as_dict()
    rate = ceiling["rsa2048_signatures_per_second"]
    figures.update(
        hosts=hosts,
        posts=posts,
        workers=workers,
        database=database,
        ceiling=ceiling,
        ratio_to_ceiling=round(figures["deliveries_per_second"] / rate, 3),
        cpu_ratio_to_ceiling=round((figures["deliveries_per_worker_cpu_second"] or 0) / rate, 3),
    )
    return figures


async def shared_inbox(
    hosts: int = 1000,
    followers: int = 10,
    database: str = "sqlite",
    timeout: float = 120.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """``hosts`` × ``followers`` followers, all behind shared inboxes: one delivery per host."""
    async with fleet_process(hosts, followers) as fleet, RelayProcesses(database=database) as relay:  # type: ignore[arg-type]
        inserted = await insert_followers(relay, fleet.hosts, followers)
        await timed_fanout(relay, fleet, 1, 60)  # warm keys and connections
        figures = await timed_fanout(relay, fleet, 1, timeout)
    figures.update(hosts=hosts, followers=inserted, database=database)
    return figures


async def host_cost(
    hosts: int = 1000,
    followers: int = 100,
    database: str = "sqlite",
    timeout: float = 120.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Time to reach ``hosts`` hosts with 1 follower each, then with ``followers`` each."""
    results: dict[str, Any] = {"hosts": hosts, "database": database}
    for per_host in (1, followers):
        async with (
            fleet_process(hosts, per_host) as fleet,
            RelayProcesses(database=database) as relay,  # type: ignore[arg-type]
        ):
            await insert_followers(relay, fleet.hosts, per_host)
            await timed_fanout(relay, fleet, 1, 60)
            results[f"followers_per_host_{per_host}"] = await timed_fanout(relay, fleet, 1, timeout)
    one = results["followers_per_host_1"]["seconds_to_last"]
    many = results[f"followers_per_host_{followers}"]["seconds_to_last"]
    results["time_ratio"] = round(many / one, 3) if one else None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_fanout")
    parser.add_argument("mode", choices=["throughput", "shared", "host-cost"])
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--posts", type=int)
    parser.add_argument("--followers", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--database", choices=["sqlite", "postgres"])
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the first worker")
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "mode" and v is not None}
    runner = {"throughput": throughput, "shared": shared_inbox, "host-cost": host_cost}[args.mode]
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
