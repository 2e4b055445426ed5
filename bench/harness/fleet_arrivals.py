"""What reached the fleet's inboxes, and waiting for it to arrive."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class FleetTimeout(TimeoutError):
    """A bounded wait on the fleet ran out before its condition held."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One POST to a fleet inbox. ``arrived_at`` is ``time.monotonic()`` on arrival."""

    activity_id: str | None
    activity_type: str | None
    inbox_url: str
    host: str
    arrived_at: float
    verified: bool
    failure: str | None = None
    key_id: str | None = None
    actor: str | None = None
    activity: dict[str, Any] | None = None
    unsupported_scheme: bool = False

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view without the activity body."""
        return {
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "inbox_url": self.inbox_url,
            "host": self.host,
            "arrived_at": self.arrived_at,
            "verified": self.verified,
            "failure": self.failure,
            "key_id": self.key_id,
            "actor": self.actor,
            "unsupported_scheme": self.unsupported_scheme,
        }


class ArrivalLog:
    """All arrivals in order, indexed by activity id, with per-(activity, inbox) counts."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.signature_failures = 0
        self.unsupported_scheme_rejections = 0
        self._by_activity: dict[str, list[Arrival]] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._changed = asyncio.Event()

    def record(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
        if arrival.unsupported_scheme:
            self.unsupported_scheme_rejections += 1
        elif not arrival.verified:
            self.signature_failures += 1
        elif arrival.activity_id is not None:
            self._by_activity.setdefault(arrival.activity_id, []).append(arrival)
            self._counts[(arrival.activity_id, arrival.inbox_url)] += 1
        self.notify()

    def notify(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    def deliveries_for(self, activity_id: str) -> list[Arrival]:
        """Verified arrivals of one activity, in arrival order (duplicates included)."""
        return list(self._by_activity.get(activity_id, ()))

    def arrival_count(self, activity_id: str, inbox_url: str) -> int:
        return self._counts[(activity_id, inbox_url)]

    def duplicates(self) -> dict[tuple[str, str], int]:
        """(activity id, inbox URL) pairs that arrived, verified, more than once."""
        return {pair: count for pair, count in self._counts.items() if count > 1}

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
        describe: Callable[[], str],
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FleetTimeout(f"timed out after {timeout:.1f}s: {describe()}")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_for(self, activity_id: str, count: int, timeout: float) -> list[Arrival]:  # noqa: ASYNC109
        """Wait until ``count`` verified deliveries of ``activity_id`` have arrived."""
        await self.wait_until(
            lambda: len(self._by_activity.get(activity_id, ())) >= count,
            timeout,
            lambda: (
                f"{len(self._by_activity.get(activity_id, ()))} of {count} deliveries "
                f"of {activity_id}"
            ),
        )
        return self.deliveries_for(activity_id)
