"""Drills where a backing service goes away while webhooks keep coming: Redis, PostgreSQL.

A stream of signed CMS webhooks (10 a second) runs before, during and after the outage. Each
answer must be a 2xx (the event is stored: it must then be published and reach every fleet
host once the service is back) or a 503 with Retry-After (the sender tries again later);
never a 500 and never a dropped connection. Pass: every accepted webhook became a post whose
Create reached every host, verified.

    python -m bench.drill_outages redis --down-seconds 30
    python -m bench.drill_outages postgres --down-seconds 10

Redis is killed (SIGKILL) and restarted empty on the same port, without persistence: the
worst case, every queued job is gone and only the sweepers can bring the work back. The
PostgreSQL drill runs the relay on a private cluster (`bench/harness/private_postgres.py`) and
restarts it with ``pg_ctl stop -m fast``; the machine's shared cluster is never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bench.bench_fanout import FleetHandle, fleet_process
from bench.drill_report import DrillReport
from bench.harness.fleet_observer import wait_for_distinct
from bench.harness.relay_process import RelayProcesses
from bench.harness.webhook_client import CMS_SETTINGS
from bench.relay_load import insert_followers
from bench.webhook_stream import WebhookOutcome, WebhookStream, wait_for_posts

# The drill's lease is shorter than the default so work claimed before an outage is taken
# over within the drill's time (it must still exceed the 30 s request timeout).
OUTAGE_SETTINGS: dict[str, Any] = {**CMS_SETTINGS, "delivery_lease_seconds": 45.0}


def _in_window(outcomes: list[WebhookOutcome], start: float, end: float) -> list[WebhookOutcome]:
    return [o for o in outcomes if start <= o.sent_at < end]


async def _outage(
    report: DrillReport,
    relay: RelayProcesses,
    fleet: FleetHandle,
    *,
    strike: Callable[[], None],
    restore: Callable[[], None],
    down_seconds: float,
    rate: float,
    recovery_timeout: float,
) -> None:
    await insert_followers(relay, fleet.hosts, 1)
    before = int((await fleet.remote.state())["arrivals"])
    stream = WebhookStream(relay, rate=rate)
    async with stream:
        await asyncio.sleep(3.0)
        down_at = time.monotonic()
        await asyncio.to_thread(strike)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(restore)
        up_at = time.monotonic()
        await asyncio.sleep(3.0)
    workers_exited = [w.name for w in relay.workers if not w.alive()]
    api_exited = relay.api is not None and not relay.api.alive()
    # A supervisor (systemd, Kubernetes) restarts a process that exits; so does the drill.
    for _ in workers_exited:
        await relay.start_worker()
    accepted = [o.source_id for o in stream.accepted]
    posts, created = await wait_for_posts(relay, accepted, recovery_timeout)
    summary = await wait_for_distinct(
        fleet.remote, before, created, len(created) * len(fleet.hosts), recovery_timeout
    )
    during = _in_window(stream.outcomes, down_at, up_at)
    report.figures.update(
        down_seconds=round(up_at - down_at, 1),
        webhooks=stream.summary(),
        statuses_while_down=WebhookStream(relay, outcomes=during).statuses(),
        accepted_while_down=sum(1 for o in during if o.accepted),
        posts=posts,
        expected_deliveries=len(accepted) * len(fleet.hosts),
        delivered=summary.distinct,
        duplicates=summary.duplicates,
        seconds_from_restore_to_last=None
        if summary.last_at is None
        else round(summary.last_at - up_at, 2),
        workers_exited=workers_exited,
        api_exited=api_exited,
    )
    server_errors = stream.server_errors()
    report.check(
        "no 5xx other than 503",
        not server_errors,
        f"{len(server_errors)}: {sorted({o.status for o in server_errors})}",
    )
    report.check(
        "every 503 carries Retry-After",
        not stream.refusals_without_retry_after(),
        f"{len(stream.refusals_without_retry_after())} without",
    )
    report.check(
        "every webhook was answered (no dropped connection)",
        not stream.unanswered(),
        f"{len(stream.unanswered())} unanswered",
    )
    report.check("the API process survived", not api_exited)
    report.check(
        "every accepted webhook became a post",
        posts == len(accepted) and len(created) == len(accepted),
        f"{posts} posts, {len(created)} Creates for {len(accepted)} accepted webhooks",
    )
    # Arrivals the fleet could not verify are counted, not failed: while the database is
    # down the relay cannot serve its own key, so the fleet answers 401 and the relay retries.
    report.figures["unverified_arrivals"] = summary.unverified
    report.check(
        "every post reached every host, verified",
        summary.distinct == len(accepted) * len(fleet.hosts),
        f"{summary.distinct} of {len(accepted) * len(fleet.hosts)}",
    )


async def redis_down(
    down_seconds: float = 30.0,
    hosts: int = 20,
    rate: float = 10.0,
    recovery_timeout: float = 90.0,
) -> dict[str, Any]:
    report = DrillReport(
        f"Redis down for {down_seconds:g} s",
        f"python -m bench.drill_outages redis --down-seconds {down_seconds:g}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(settings=OUTAGE_SETTINGS) as relay,
        ):
            await _outage(
                report,
                relay,
                fleet,
                strike=relay.redis_server.kill,
                restore=relay.redis_server.start,
                down_seconds=down_seconds,
                rate=rate,
                recovery_timeout=recovery_timeout,
            )
            report.check(
                "webhooks were accepted while Redis was down",
                report.figures["accepted_while_down"] > 0,
                f"{report.figures['accepted_while_down']} accepted",
            )
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


async def postgres_restart(
    down_seconds: float = 10.0,
    hosts: int = 20,
    rate: float = 10.0,
    recovery_timeout: float = 90.0,
) -> dict[str, Any]:
    report = DrillReport(
        f"PostgreSQL restarted mid-run (down {down_seconds:g} s)",
        f"python -m bench.drill_outages postgres --down-seconds {down_seconds:g}",
    )
    try:
        async with (
            fleet_process(hosts, 1) as fleet,
            RelayProcesses(database="postgres", settings=OUTAGE_SETTINGS) as relay,
        ):
            postgres = relay.postgres
            assert postgres is not None
            await _outage(
                report,
                relay,
                fleet,
                strike=lambda: postgres.stop("fast"),
                restore=postgres.start,
                down_seconds=down_seconds,
                rate=rate,
                recovery_timeout=recovery_timeout,
            )
            statuses = report.figures["statuses_while_down"]
            report.check(
                "the API answered 503 while the database was down",
                "503" in statuses,
                f"{statuses}",
            )
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_outages")
    parser.add_argument("drill", choices=["redis", "postgres"])
    parser.add_argument("--down-seconds", type=float)
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--rate", type=float)
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k != "drill" and v is not None}
    runner = redis_down if args.drill == "redis" else postgres_restart
    print(json.dumps(asyncio.run(runner(**options)), indent=2))


if __name__ == "__main__":
    main()
