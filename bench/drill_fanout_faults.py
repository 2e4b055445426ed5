"""Fault drills during a fan-out: the worker SIGKILLed, Redis flushed.

Both publish posts to every fleet host, strike once a share of the deliveries has arrived,
and then wait (bounded) for every (activity, inbox) pair to arrive, verified. Nothing may be
lost; a SIGKILL may cause duplicates, at most the deliveries that were in flight (claimed in
the database, outcome not yet written) at the moment of the kill.

    python -m bench.drill_fanout_faults kill --hosts 1000 --posts 10
    python -m bench.drill_fanout_faults flush --hosts 100 --posts 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from sqlalchemy import func, select

from bench.bench_fanout import FleetHandle, fleet_process
from bench.drill_report import DrillReport
from bench.harness.fleet_observer import (
    ArrivalSummary,
    arrivals_since,
    wait_for_distinct,
    wait_for_verified,
)
from bench.harness.relay_process import RelayProcesses
from bench.relay_load import PublishedBatch, insert_followers, publish_posts
from service.db.models import Delivery

# A lease shorter than the default so a killed worker's deliveries are taken over within a
# minute, yet longer than the 30 s request timeout plus the engine's margin, as required.
DRILL_SETTINGS: dict[str, Any] = {"delivery_lease_seconds": 45.0}


async def delivery_states(relay: RelayProcesses) -> dict[str, int]:
    async with relay.database.session() as session:
        rows = await session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
        return {state: int(count) for state, count in rows.all()}


async def _start(
    relay: RelayProcesses, fleet: FleetHandle, posts: int
) -> tuple[PublishedBatch, int, int]:
    await insert_followers(relay, fleet.hosts, 1)
    state = await fleet.remote.state()
    batch = await publish_posts(relay, posts)
    return batch, int(state["arrivals"]), int(state["verified"])


async def _finish(
    report: DrillReport,
    relay: RelayProcesses,
    fleet: FleetHandle,
    batch: PublishedBatch,
    arrivals_before: int,
    verified_before: int,
    timeout: float,  # noqa: ASYNC109
) -> ArrivalSummary:
    expected = batch.delivery_count
    await wait_for_distinct(fleet.remote, arrivals_before, batch.activity_ids, expected, timeout)
    # Let the database settle (outcomes written) so late duplicates are counted too.
    settle_deadline = time.monotonic() + 60
    while time.monotonic() < settle_deadline:
        states = await delivery_states(relay)
        if set(states) <= {"delivered"}:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    summary = ArrivalSummary.of(
        await arrivals_since(fleet.remote, arrivals_before), batch.activity_ids
    )
    report.figures.update(
        expected=expected,
        delivered=summary.distinct,
        duplicates=summary.duplicates,
        unverified=summary.unverified,
        seconds_to_last=None
        if summary.last_at is None
        else round(summary.last_at - batch.committed_at, 2),
        delivery_states=await delivery_states(relay),
    )
    report.check(
        "every delivery arrived, verified",
        summary.distinct == expected,
        f"{summary.distinct} of {expected}",
    )
    report.check("no signature failures", summary.unverified == 0, f"{summary.unverified}")
    return summary


async def _wait_for_share(
    fleet: FleetHandle,
    verified_before: int,
    expected: int,
    share: float,
    timeout: float,  # noqa: ASYNC109
) -> int:
    target = verified_before + max(1, int(expected * share))
    _, verified = await wait_for_verified(fleet.remote, target, timeout, poll=0.01)
    return verified - verified_before


async def worker_kill(
    hosts: int = 1000,
    posts: int = 10,
    strike_at: float = 0.3,
    timeout: float = 180.0,  # noqa: ASYNC109
    lease_seconds: float = DRILL_SETTINGS["delivery_lease_seconds"],
) -> dict[str, Any]:
    report = DrillReport(
        "worker SIGKILL mid-fan-out",
        f"python -m bench.drill_fanout_faults kill --hosts {hosts} --posts {posts}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(settings={"delivery_lease_seconds": lease_seconds}) as relay,
        ):
            batch, arrivals_before, verified_before = await _start(relay, fleet, posts)
            arrived = await _wait_for_share(
                fleet, verified_before, batch.delivery_count, strike_at, 60
            )
            relay.kill_worker(0)
            killed_at = time.monotonic()
            states = await delivery_states(relay)
            in_flight = states.get("in_flight", 0)
            await asyncio.sleep(0.5)
            arrived_at_kill = int((await fleet.remote.state())["verified"]) - verified_before
            await relay.start_worker()
            restarted_at = time.monotonic()
            summary = await _finish(
                report, relay, fleet, batch, arrivals_before, verified_before, timeout
            )
            report.figures.update(
                arrived_before_kill=arrived,
                arrived_when_killed=arrived_at_kill,
                in_flight_at_kill=in_flight,
                restart_seconds=round(restarted_at - killed_at, 2),
                seconds_from_kill_to_last=None
                if summary.last_at is None
                else round(summary.last_at - killed_at, 2),
                lease_seconds=lease_seconds,
            )
            report.check(
                "duplicates at most the deliveries in flight at the kill",
                summary.duplicates <= in_flight,
                f"{summary.duplicates} duplicates, {in_flight} in flight",
            )
    except Exception as exc:  # a drill reports its failure instead of raising
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


async def redis_flush(
    hosts: int = 100,
    posts: int = 100,
    strike_at: float = 0.2,
    timeout: float = 180.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """More activities than a worker runs at once, so some jobs are only queued when Redis
    is emptied: those exist only in the database afterwards, until the sweeper finds them."""
    report = DrillReport(
        "FLUSHALL of Redis mid-fan-out",
        f"python -m bench.drill_fanout_faults flush --hosts {hosts} --posts {posts}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(settings=DRILL_SETTINGS) as relay,
        ):
            batch, arrivals_before, verified_before = await _start(relay, fleet, posts)
            arrived = await _wait_for_share(
                fleet, verified_before, batch.delivery_count, strike_at, 60
            )
            queued = await relay.redis.zcard(relay.settings.queue_name)
            await relay.redis.flushall()
            flushed_at = time.monotonic()
            summary = await _finish(
                report, relay, fleet, batch, arrivals_before, verified_before, timeout
            )
            report.figures.update(
                arrived_before_flush=arrived,
                jobs_queued_at_flush=int(queued),
                seconds_from_flush_to_last=None
                if summary.last_at is None
                else round(summary.last_at - flushed_at, 2),
            )
            report.check(
                "jobs were lost by the flush (the drill tested the sweeper)",
                queued > 0,
                f"{queued} queued jobs flushed",
            )
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_fanout_faults")
    parser.add_argument("drill", choices=["kill", "flush"])
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--posts", type=int)
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "drill" and v is not None}
    runner = worker_kill if args.drill == "kill" else redis_flush
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
