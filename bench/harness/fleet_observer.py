"""Reading what a fleet process received: waiting for counts and summarising arrivals.

Arrival times are ``time.monotonic()`` in the fleet process; on Linux that clock is
system-wide, so they compare directly with ``time.monotonic()`` in the benchmark process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.harness.fleet_control import RemoteFleet

_PAGE = 20_000


async def arrivals_since(fleet: RemoteFleet, since: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = await fleet.arrivals(since + len(found), _PAGE)
        found.extend(page)
        if len(page) < _PAGE:
            return found


async def wait_for_verified(
    fleet: RemoteFleet,
    target: int,
    timeout: float,  # noqa: ASYNC109
    *,
    poll: float = 0.05,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[bool, int]:
    """Poll until the fleet counted ``target`` verified arrivals in total; (reached, count)."""
    deadline = time.monotonic() + timeout
    verified = 0
    while True:
        verified = int((await fleet.state())["verified"])
        if on_progress is not None:
            on_progress(verified)
        if verified >= target:
            return True, verified
        if time.monotonic() >= deadline:
            return False, verified
        await asyncio.sleep(poll)


@dataclass
class ArrivalSummary:
    """Verified arrivals of a set of activities (or all), with duplicates and timing."""

    verified: int = 0
    unverified: int = 0
    duplicates: int = 0
    distinct: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_by_host: dict[str, float] = field(default_factory=dict)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def of(
        cls, arrivals: Iterable[dict[str, Any]], activity_ids: Iterable[str] | None = None
    ) -> ArrivalSummary:
        wanted = set(activity_ids) if activity_ids is not None else None
        summary = cls()
        for arrival in arrivals:
            if wanted is not None and arrival["activity_id"] not in wanted:
                continue
            if not arrival["verified"]:
                summary.unverified += 1
                continue
            summary.verified += 1
            at = float(arrival["arrived_at"])
            summary.pairs[(arrival["activity_id"], arrival["inbox_url"])] += 1
            summary.first_at = at if summary.first_at is None else min(summary.first_at, at)
            summary.last_at = at if summary.last_at is None else max(summary.last_at, at)
            host = arrival["host"]
            summary.last_by_host[host] = max(summary.last_by_host.get(host, 0.0), at)
        summary.distinct = len(summary.pairs)
        summary.duplicates = summary.verified - summary.distinct
        return summary

    def missing(self, expected: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [pair for pair in expected if pair not in self.pairs]


async def wait_for_distinct(
    fleet: RemoteFleet,
    arrivals_before: int,
    activity_ids: Iterable[str],
    expected: int,
    timeout: float,  # noqa: ASYNC109
    poll: float = 0.25,
) -> ArrivalSummary:
    """Wait until ``expected`` distinct (activity, inbox) pairs arrived, verified; duplicates
    do not count. Returns the summary at that point (or at the timeout)."""
    wanted = set(activity_ids)
    deadline = time.monotonic() + timeout
    collected: list[dict[str, Any]] = []
    pairs: set[tuple[str, str]] = set()
    while True:
        fresh = await arrivals_since(fleet, arrivals_before + len(collected))
        collected.extend(fresh)
        pairs.update(
            (a["activity_id"], a["inbox_url"])
            for a in fresh
            if a["verified"] and a["activity_id"] in wanted
        )
        if len(pairs) >= expected or time.monotonic() >= deadline:
            return ArrivalSummary.of(collected, wanted)
        await asyncio.sleep(poll)
