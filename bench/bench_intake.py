"""Inbox intake: signed activities from the fleet, verified and persisted by one API process.

``rate``: the fleet (its own process) sends ``count`` Likes and Follows, alternating, to the
relay's shared inbox from ``hosts`` hosts; every request is signed before the clock starts,
so the window holds the relay's work (parse, verify the RSA signature, check the envelope,
store) and the round trips. No worker runs, so the API has a core to itself; one round
beforehand makes the API fetch and cache every actor's key. After the run the database must
hold one inbox activity per 2xx.

``follows``: ``hosts`` × ``followers`` fleet actors follow the relay once each (pre-signed,
64 at a time) with one worker running; the figures are how many Accepts arrived at the
fleet, verified, within 30 s of the first Follow, and the time to the last one (waiting at
most 60 s, so the run stays bounded).

    python -m bench.bench_intake rate --count 10000 --hosts 100
    python -m bench.bench_intake follows --hosts 1000 --followers 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.bench_fanout import FleetHandle, fleet_process, other_cpu, process_cpu_seconds
from bench.harness.fleet_observer import arrivals_since
from bench.harness.relay_process import RelayProcesses
from bench.machine_ceiling import signing_ceiling
from bench.profiling import hot_spots, sampled
from service.db.models import Follower, InboxActivity


async def _stored_activities(relay: RelayProcesses) -> int:
    async with relay.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxActivity)) or 0)


async def rate(
    count: int = 10_000,
    hosts: int = 100,
    concurrency: int = 64,
    database: str = "sqlite",
    ceiling_seconds: float = 0.7,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Accepted (202) inbox POSTs per second, each verified and stored before the answer.

    With ``profile``, the API process is sampled by py-spy for the measured window."""
    ceiling = await asyncio.to_thread(signing_ceiling, 3, ceiling_seconds)
    async with (
        fleet_process(hosts, 1) as fleet,
        RelayProcesses(workers=0, database=database) as relay,  # type: ignore[arg-type]
    ):
        object_id = relay.urls.object("intake-benchmark")
        # Key fetches and connection set-up happen here, outside the measured window.
        warm = await fleet.remote.burst(
            relay.actor_url, hosts, kinds=["Like"], object_id=object_id, concurrency=16
        )
        stored_before = await _stored_activities(relay)
        assert relay.api is not None
        api_cpu_before = relay.api.cpu_seconds()
        fleet_cpu_before = process_cpu_seconds(fleet.spawned.process.pid)
        with sampled(relay.api.pid if profile else None, profile):
            burst = await fleet.remote.burst(
                relay.actor_url, count, object_id=object_id, concurrency=concurrency
            )
        api_cpu = relay.api.cpu_seconds() - api_cpu_before
        fleet_cpu = process_cpu_seconds(fleet.spawned.process.pid) - fleet_cpu_before
        stored = await _stored_activities(relay) - stored_before
        rss_mb = round(relay.api.rss_bytes() / 2**20, 1)
    accepted = int(burst["accepted"])
    per_second = float(burst["per_second"] or 0.0)
    signing = ceiling["rsa2048_signatures_per_second"]
    hot = {} if profile is None else {"api_hot_spots": hot_spots(profile, 25).as_dict()}
    return {
        **hot,
        "count": count,
        "hosts": hosts,
        "concurrency": concurrency,
        "database": database,
        "accepted": accepted,
        "statuses": burst["statuses"],
        "stored": stored,
        "every_accepted_stored": stored >= accepted,
        "seconds": burst["seconds"],
        "activities_per_second": per_second,
        "p50_ms": burst["p50_ms"],
        "p99_ms": burst["p99_ms"],
        "api_cpu_seconds": round(api_cpu, 2),
        "activities_per_api_cpu_second": round(accepted / api_cpu, 1) if api_cpu > 0 else None,
        "fleet_cpu_seconds": round(fleet_cpu, 2),
        "api_rss_mb": rss_mb,
        "warm_up_statuses": warm["statuses"],
        "ceiling": ceiling,
        "ratio_to_ceiling": round(per_second / signing, 3),
    }


class AcceptClock:
    """First arrival time of every verified Accept at the fleet, read incrementally."""

    def __init__(self, fleet: FleetHandle, before: int) -> None:
        self.fleet = fleet
        self.read = before
        self.times: dict[str, float] = {}

    async def update(self) -> list[float]:
        fresh = await arrivals_since(self.fleet.remote, self.read)
        self.read += len(fresh)
        for arrival in fresh:
            if arrival["activity_type"] == "Accept" and arrival["verified"]:
                self.times.setdefault(arrival["activity_id"], float(arrival["arrived_at"]))
        return sorted(self.times.values())


async def follows(
    hosts: int = 1000,
    followers: int = 10,
    workers: int = 1,
    database: str = "sqlite",
    target_seconds: float = 30.0,
    wait_seconds: float = 60.0,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Every fleet actor follows the relay once (pre-signed, 64 at a time); how many Accepts
    arrived at the fleet, verified, within ``target_seconds``, and when the last one did
    (waiting at most ``wait_seconds`` from the first Follow).

    With ``profile``, the API and the first worker are sampled by py-spy for the whole
    window (``<profile>.api`` and ``<profile>.worker``)."""
    expected = hosts * followers
    async with (
        fleet_process(hosts, followers) as fleet,
        RelayProcesses(workers=workers, database=database) as relay,  # type: ignore[arg-type]
    ):
        before = int((await fleet.remote.state())["arrivals"])
        cpu_before = _cpu_by_process(relay, fleet)
        profiles = _follow_profiles(relay, profile)
        with contextlib.ExitStack() as sampling:
            for pid, output in profiles.items():
                sampling.enter_context(sampled(pid, output))
            burst = await fleet.remote.burst(
                relay.actor_url,
                expected,
                kinds=["Follow"],
                concurrency=64,
                max_seconds=wait_seconds,
            )
            started = float(burst["started_at"])
            clock = AcceptClock(fleet, before)
            accepts = await clock.update()
            while len(accepts) < expected and time.monotonic() < started + wait_seconds:
                await asyncio.sleep(1.0)
                accepts = await clock.update()
        cpu_after = _cpu_by_process(relay, fleet)
        async with relay.database.session() as session:
            follower_rows = int(
                await session.scalar(
                    select(func.count()).select_from(Follower).where(Follower.state == "accepted")
                )
                or 0
            )
            received = int(
                await session.scalar(select(func.count()).select_from(InboxActivity)) or 0
            )
    within = sum(1 for at in accepts if at - started <= target_seconds)
    hot = {
        f"{output.suffix[1:]}_hot_spots": hot_spots(output, 25).as_dict()
        for output in profiles.values()
    }
    return {
        **hot,
        "hosts": hosts,
        "followers_per_host": followers,
        "expected": expected,
        "follow_statuses": burst["statuses"],
        "follows_resent_after_closed_connection": burst.get("resent_after_closed_connection", 0),
        "seconds_to_send": burst["seconds"],
        "follows_per_second_taken": burst["per_second"],
        "follow_p50_ms": burst["p50_ms"],
        "follow_p99_ms": burst["p99_ms"],
        "inbox_activities_stored": received,
        "accepted_within_target": within,
        "accepts_arrived": len(accepts),
        "followers_stored_accepted": follower_rows,
        "seconds_to_last_accept": round(accepts[-1] - started, 2)
        if len(accepts) >= expected
        else None,
        "all_accepted_within_target": within == expected,
        "target_seconds": target_seconds,
        # CPU per Follow answered, per process: comparable however busy the machine was.
        "cpu_ms_per_follow": {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(1, len(accepts)), 2)
            for name in cpu_after
        },
    }


def _follow_profiles(relay: RelayProcesses, profile: Path | None) -> dict[int, Path]:
    if profile is None:
        return {}
    workers = relay.live_workers()
    assert relay.api is not None
    targets = {relay.api.pid: profile.with_suffix(".api")}
    if workers:
        targets[workers[0].pid] = profile.with_suffix(".worker")
    return targets


def _cpu_by_process(relay: RelayProcesses, fleet: FleetHandle) -> dict[str, float]:
    seconds = other_cpu(relay, fleet)
    for worker in relay.live_workers():
        seconds[worker.name] = worker.cpu_seconds()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_intake")
    parser.add_argument("mode", choices=["rate", "follows"])
    parser.add_argument("--count", type=int)
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--followers", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--database", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy raw profiles: the API (rate); the API and a worker (follows)",
    )
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "mode" and v is not None}
    runner = rate if args.mode == "rate" else follows
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
