"""Drills where some destination servers misbehave: a fifth of them failing, one of them slow.

Both first measure a no-fault fan-out on the same warm relay and fleet (the baseline: time
from the commit of the posts to the last arrival), then repeat it with the fault and compare
what the healthy hosts saw. A host that misbehaves must not hold the others up.

    python -m bench.drill_host_faults failing --hosts 100 --posts 50 --fault-seconds 60
    python -m bench.drill_host_faults slow --hosts 20 --posts 20

``failing``: 20 % of the hosts answer 500 for ``fault_seconds``, then recover. Pass: the
healthy hosts' last delivery within 1.5 × the baseline, and every host, the failing ones
included, receives everything once they recover. The retry schedule is time-scaled for the
drill (``delivery_retry_time_scale``, 0.05: the first retries after 0.75, 0.8, 1.6, 4.8 s
instead of 15, 16, 31, 96 s), so recovery fits in the drill; the circuit breaker's cool-off
(60 s after 10 consecutive failures) is not scaled.

``slow``: one host answers, then sends its body one byte every 3 s: first after a 202 (the
relay needs only the status line and must not wait for the body), then after a 503 (the
relay reads a capped part of an error page, so the 30 s total timeout must end it). Pass:
the other hosts' last delivery within 1.5 × the baseline in both phases, the 2xx attempts
short, the error attempts cut as timeouts at about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bench.bench_fanout import FleetHandle, fleet_process
from bench.drill_report import DrillReport
from bench.harness.fleet_observer import ArrivalSummary, wait_for_distinct
from bench.harness.relay_process import RelayProcesses
from bench.relay_load import PublishedBatch, insert_followers, publish_posts
from service.db.models import Delivery, DeliveryAttempt, DestinationHost

SLOWNESS_FACTOR = 1.5
HOST_FAULT_SETTINGS: dict[str, Any] = {
    "delivery_retry_time_scale": 0.05,
    "delivery_lease_seconds": 45.0,
}


def domain_of(base_url: str) -> str:
    return base_url.split("://", 1)[1]


async def _fanout(
    relay: RelayProcesses,
    fleet: FleetHandle,
    posts: int,
    timeout: float,  # noqa: ASYNC109
) -> tuple[PublishedBatch, ArrivalSummary]:
    before = int((await fleet.remote.state())["arrivals"])
    batch = await publish_posts(relay, posts)
    summary = await wait_for_distinct(
        fleet.remote, before, batch.activity_ids, batch.delivery_count, timeout
    )
    return batch, summary


def _last_among(summary: ArrivalSummary, hosts: set[str]) -> float | None:
    times = [at for host, at in summary.last_by_host.items() if host in hosts]
    return max(times) if times else None


async def _baseline(relay: RelayProcesses, fleet: FleetHandle, posts: int) -> float:
    await _fanout(relay, fleet, 1, 60)  # keys fetched, connections open
    batch, summary = await _fanout(relay, fleet, posts, 120)
    if summary.last_at is None or summary.distinct != batch.delivery_count:
        raise RuntimeError(f"baseline incomplete: {summary.distinct}/{batch.delivery_count}")
    return summary.last_at - batch.committed_at


async def failing_hosts(
    hosts: int = 100,
    posts: int = 50,
    fraction: float = 0.2,
    fault_seconds: float = 60.0,
    recovery_timeout: float = 90.0,
) -> dict[str, Any]:
    report = DrillReport(
        f"{fraction:.0%} of hosts failing for {fault_seconds:g} s",
        f"python -m bench.drill_host_faults failing --hosts {hosts} --posts {posts} "
        f"--fault-seconds {fault_seconds:g}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(settings=HOST_FAULT_SETTINGS) as relay,
        ):
            await insert_followers(relay, fleet.hosts, 1)
            baseline = await _baseline(relay, fleet, posts)
            failing_urls = await fleet.remote.inject(
                "server_error", fraction=fraction, duration=fault_seconds, inbox_only=True
            )
            fault_ends = time.monotonic() + fault_seconds
            failing = {domain_of(url) for url in failing_urls}
            healthy = {domain_of(url) for url in fleet.hosts} - failing
            before = int((await fleet.remote.state())["arrivals"])
            watch = BreakerWatch(relay, failing)
            watch.start()
            batch = await publish_posts(relay, posts)
            summary = await wait_for_distinct(
                fleet.remote,
                before,
                batch.activity_ids,
                batch.delivery_count,
                fault_seconds + recovery_timeout,
            )
            breakers = await watch.stop()
            healthy_last = _last_among(summary, healthy)
            failing_last = _last_among(summary, failing)
            healthy_seconds = None if healthy_last is None else healthy_last - batch.committed_at
            report.figures.update(
                hosts=hosts,
                failing_hosts=len(failing),
                deliveries=batch.delivery_count,
                baseline_seconds=round(baseline, 2),
                healthy_last_seconds=None if healthy_seconds is None else round(healthy_seconds, 2),
                healthy_ratio=None
                if healthy_seconds is None
                else round(healthy_seconds / baseline, 2),
                delivered=summary.distinct,
                duplicates=summary.duplicates,
                failing_last_after_recovery_seconds=None
                if failing_last is None
                else round(failing_last - fault_ends, 2),
                fault_responses=(await fleet.remote.state())["fault_responses"],
                failing_breakers=breakers,
                retry_time_scale=HOST_FAULT_SETTINGS["delivery_retry_time_scale"],
            )
            report.check(
                "healthy hosts not slowed beyond 1.5 × the baseline",
                healthy_seconds is not None and healthy_seconds <= SLOWNESS_FACTOR * baseline,
                f"{report.figures['healthy_last_seconds']} s vs baseline {baseline:.2f} s",
            )
            report.check(
                "every host received everything after recovering",
                summary.distinct == batch.delivery_count,
                f"{summary.distinct} of {batch.delivery_count}",
            )
            report.check("no signature failures", summary.unverified == 0, f"{summary.unverified}")
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


async def _breakers(relay: RelayProcesses, hosts: set[str]) -> tuple[int, float]:
    """The most consecutive failures among the hosts, and the longest cool-off still ahead."""
    now = datetime.now(UTC)
    async with relay.database.session() as session:
        rows = (
            await session.execute(
                select(
                    DestinationHost.consecutive_failures, DestinationHost.breaker_open_until
                ).where(DestinationHost.host.in_(hosts))
            )
        ).all()
    failures = max((int(count) for count, _ in rows), default=0)
    ahead = max(((until - now).total_seconds() for _, until in rows if until), default=0.0)
    return failures, ahead


class BreakerWatch:
    """Samples the failing hosts' breakers every 2 s: the worst seen over the drill."""

    def __init__(self, relay: RelayProcesses, hosts: set[str]) -> None:
        self.relay, self.hosts = relay, hosts
        self.most_failures = 0
        self.longest_cooloff = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            failures, ahead = await _breakers(self.relay, self.hosts)
            self.most_failures = max(self.most_failures, failures)
            self.longest_cooloff = max(self.longest_cooloff, ahead)
            await asyncio.sleep(2.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return {
            "most_consecutive_failures": self.most_failures,
            "longest_cooloff_ahead_seconds": round(self.longest_cooloff),
        }


async def _attempts_to(relay: RelayProcesses, host: str) -> list[tuple[str | None, int | None]]:
    async with relay.database.session() as session:
        rows = await session.execute(
            select(DeliveryAttempt.error, DeliveryAttempt.duration_ms)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.host == host)
        )
        return [(error, duration) for error, duration in rows.all()]


async def _slow_phase(
    relay: RelayProcesses,
    fleet: FleetHandle,
    posts: int,
    status: int,
    byte_interval: float,
    cut_timeout: float,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Publish ``posts`` with host 0 answering ``status`` and then a byte per interval."""
    slow = domain_of(fleet.hosts[0])
    others = {domain_of(url) for url in fleet.hosts[1:]}
    await fleet.remote.clear_faults()
    await fleet.remote.inject(
        "slow_body",
        hosts=[0],
        status=status,
        byte_interval=byte_interval,
        body_bytes=int(60 / byte_interval),
        inbox_only=True,
    )
    attempts_before = len(await _attempts_to(relay, slow))
    before = int((await fleet.remote.state())["arrivals"])
    batch = await publish_posts(relay, posts)
    others_expected = len(batch.activity_ids) * len(others)
    summary = await wait_for_distinct(fleet.remote, before, batch.activity_ids, others_expected, 60)
    others_last = _last_among(summary, others)
    # Wait (bounded) until the slow host's first requests have ended one way or another.
    deadline = time.monotonic() + cut_timeout
    attempts: list[tuple[str | None, int | None]] = []
    while time.monotonic() < deadline:
        attempts = (await _attempts_to(relay, slow))[attempts_before:]
        if len(attempts) >= min(posts, 8):
            break
        await asyncio.sleep(1.0)
    await fleet.remote.clear_faults()
    durations = sorted(d for _, d in attempts if d is not None)
    return {
        "slow_status": status,
        "others_last_seconds": None
        if others_last is None
        else round(others_last - batch.committed_at, 2),
        "others_delivered": sum(
            1 for (_, inbox) in summary.pairs if domain_of(inbox).split("/")[0] in others
        ),
        "others_expected": others_expected,
        "slow_attempts": len(attempts),
        "slow_timeouts": sum(1 for error, _ in attempts if error and "timeout" in error.lower()),
        "slow_attempt_ms": [durations[0], durations[-1]] if durations else [],
    }


async def slow_host(
    hosts: int = 20,
    posts: int = 20,
    byte_interval: float = 3.0,
    cut_timeout: float = 60.0,
) -> dict[str, Any]:
    report = DrillReport(
        f"one slow host (a byte every {byte_interval:g} s)",
        f"python -m bench.drill_host_faults slow --hosts {hosts} --posts {posts}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(settings=HOST_FAULT_SETTINGS) as relay,
        ):
            await insert_followers(relay, fleet.hosts, 1)
            baseline = await _baseline(relay, fleet, posts)
            # A slow body after a 2xx: the relay has its answer with the status line.
            accepted = await _slow_phase(relay, fleet, posts, 202, byte_interval, 20)
            # A slow error page: the relay reads (a capped part of) it, so the total timeout
            # is what ends the request.
            erring = await _slow_phase(relay, fleet, posts, 503, byte_interval, cut_timeout)
            report.figures.update(
                hosts=hosts,
                baseline_seconds=round(baseline, 2),
                slow_2xx_body=accepted,
                slow_error_body=erring,
            )
            for phase in (accepted, erring):
                seconds = phase["others_last_seconds"]
                report.check(
                    f"other hosts within 1.5 × the baseline (slow {phase['slow_status']})",
                    seconds is not None and seconds <= SLOWNESS_FACTOR * baseline,
                    f"{seconds} s vs baseline {baseline:.2f} s",
                )
                report.check(
                    f"other hosts received everything (slow {phase['slow_status']})",
                    phase["others_delivered"] == phase["others_expected"],
                    f"{phase['others_delivered']} of {phase['others_expected']}",
                )
            longest = accepted["slow_attempt_ms"][-1] if accepted["slow_attempt_ms"] else None
            report.check(
                "a slow 2xx body does not hold the request",
                longest is not None and longest < 5_000,
                f"longest attempt {longest} ms",
            )
            cut = erring["slow_attempt_ms"]
            report.check(
                "a slow error body is cut at the 30 s total timeout",
                erring["slow_timeouts"] > 0 and bool(cut) and 25_000 <= cut[-1] <= 40_000,
                f"{erring['slow_timeouts']} timeouts, attempts took {cut} ms",
            )
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_host_faults")
    parser.add_argument("drill", choices=["failing", "slow"])
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--posts", type=int)
    parser.add_argument("--fault-seconds", type=float)
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "drill" and v is not None}
    runner = failing_hosts if args.drill == "failing" else slow_host
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
