"""Inbox intake: signed activities from the fleet, verified and persisted by one API process.

``rate``: the fleet (its own process) sends ``count`` Likes and Follows, alternating, to the
relay's shared inbox from ``hosts`` hosts; every request is signed before the clock starts,
so the window holds the relay's work (parse, verify the RSA signature, check the envelope,
store) and the round trips. No worker runs, so the API has a core to itself; one round
beforehand makes the API fetch and cache every actor's key. After the run the database must
hold one inbox activity per 2xx.

``follows``: ``hosts`` × ``followers`` fleet actors follow the relay (signed as they go,
64 at a time) with one worker running; the figure is the time from the first Follow to the
last Accept verified at the fleet.

    python -m bench.bench_intake rate --count 10000 --hosts 100
    python -m bench.bench_intake follows --hosts 1000 --followers 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from sqlalchemy import func, select

from bench.bench_fanout import fleet_process, process_cpu_seconds
from bench.fleet_observer import arrivals_since
from bench.machine_ceiling import signing_ceiling
from bench.relay_process import RelayProcesses
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
) -> dict[str, Any]:
    """Accepted (202) inbox POSTs per second, each verified and stored before the answer."""
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
    return {
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


async def follows(
    hosts: int = 1000,
    followers: int = 10,
    workers: int = 1,
    database: str = "sqlite",
    timeout: float = 120.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Every fleet actor follows the relay; time until every Accept arrived, verified."""
    async with (
        fleet_process(hosts, followers) as fleet,
        RelayProcesses(workers=workers, database=database) as relay,  # type: ignore[arg-type]
    ):
        before = int((await fleet.remote.state())["arrivals"])
        started = time.monotonic()
        sent = await fleet.remote.follow(relay.actor_url)
        sent_at = time.monotonic()
        wait_error = None
        try:
            accepted = await fleet.remote.wait_for_accepts(timeout)
        except Exception as exc:  # a timeout is a figure, not a crash
            wait_error = f"{type(exc).__name__}: {exc}"
            accepted = int((await fleet.remote.state())["follows_accepted"])
        arrivals = await arrivals_since(fleet.remote, before)
        accepts = [a for a in arrivals if a["activity_type"] == "Accept" and a["verified"]]
        last_accept = max((float(a["arrived_at"]) for a in accepts), default=None)
        async with relay.database.session() as session:
            follower_rows = int(
                await session.scalar(
                    select(func.count()).select_from(Follower).where(Follower.state == "accepted")
                )
                or 0
            )
    expected = hosts * followers
    seconds = None if last_accept is None else round(last_accept - started, 2)
    return {
        "hosts": hosts,
        "followers_per_host": followers,
        "expected": expected,
        "sent": sent.get("sent"),
        "send_failures": len(sent.get("failed", {})),
        "seconds_to_send": round(sent_at - started, 2),
        "accepted": accepted,
        "accept_arrivals": len(accepts),
        "followers_stored_accepted": follower_rows,
        "seconds_to_last_accept": seconds,
        "all_accepted": accepted == expected and follower_rows == expected,
        "wait_error": wait_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_intake")
    parser.add_argument("mode", choices=["rate", "follows"])
    parser.add_argument("--count", type=int)
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--followers", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--database", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "mode" and v is not None}
    runner = rate if args.mode == "rate" else follows
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
