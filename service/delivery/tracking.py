"""Per-process delivery state with bounded memory: host health, per-host slots and the claim
window (how many claimed deliveries this process may hold at once)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from federation.peers.host_health import (
    HEALTHY,
    Admission,
    HostHealth,
    HostPolicy,
    admission,
    record_failure,
    take_probe,
)


class HostHealthTracker:
    """The last known health of recently used hosts (least recently used dropped first).

    The database holds the truth; this copy is refreshed from it at every claim, so several
    workers agree within one batch. A dropped entry is simply reloaded.
    """

    def __init__(self, policy: HostPolicy, max_hosts: int = 20_000) -> None:
        self.policy = policy
        self.max_hosts = max_hosts
        self._states: OrderedDict[str, HostHealth] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, host: str) -> HostHealth:
        return self._states.get(host, HEALTHY)

    def _put(self, host: str, health: HostHealth) -> None:
        self._states[host] = health
        self._states.move_to_end(host)
        while len(self._states) > self.max_hosts:
            self._states.popitem(last=False)

    def refresh(self, known: dict[str, HostHealth], hosts: set[str]) -> None:
        """Adopt the database's view for these hosts (absent from the table means healthy)."""
        for host in hosts:
            stored = known.get(host, HEALTHY)
            current = self._states.get(host)
            # A probe hold taken here is newer than what the table says; keep it.
            if current is not None and _holding_probe(current, stored):
                continue
            self._put(host, stored)

    def admit(self, host: str, now: datetime) -> tuple[Admission, HostHealth]:
        health = self.get(host)
        decision = admission(health, now, self.policy)
        if decision is Admission.PROBE:
            health = take_probe(health, now, self.policy)
            self._put(host, health)
        return decision, health

    def succeeded(self, host: str) -> bool:
        """Record a success; True when this changed the host's state (worth storing)."""
        changed = not self.get(host).is_clean
        self._put(host, HEALTHY)
        return changed

    def failed(self, host: str, now: datetime, *, probe: bool = False) -> HostHealth:
        health = record_failure(self.get(host), now, self.policy, probe=probe)
        self._put(host, health)
        return health


def _holding_probe(current: HostHealth, stored: HostHealth) -> bool:
    return (
        current.consecutive_failures == stored.consecutive_failures
        and current.breaker_open_until is not None
        and (
            stored.breaker_open_until is None
            or current.breaker_open_until > stored.breaker_open_until
        )
    )


class HostSlots:
    """At most `per_host` deliveries in progress to one host; entries exist only while used."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        # host -> [semaphore, deliveries holding or waiting for a slot]
        self._slots: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    async def acquire(self, host: str) -> None:
        entry = self._slots.get(host)
        if entry is None:
            entry = self._slots[host] = [asyncio.Semaphore(self.per_host), 0]
        entry[1] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave(host, entry, holding=False)
            raise

    def release(self, host: str) -> None:
        self._leave(host, self._slots[host], holding=True)

    def _leave(self, host: str, entry: list[Any], *, holding: bool) -> None:
        if holding:
            entry[0].release()
        entry[1] -= 1
        if entry[1] <= 0:
            del self._slots[host]

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        await self.acquire(host)
        try:
            yield
        finally:
            self.release(host)

    def saturated(self, backlog: int) -> list[str]:
        """Hosts whose slots are all taken with at least `backlog` more deliveries waiting:
        claiming more for them would only hold claims without sending anything."""
        limit = self.per_host + backlog
        return [host for host, (_, users) in self._slots.items() if users >= limit]


class ClaimWindow:
    """Deliveries this process has claimed and whose outcome is not committed yet.

    A claim takes room in the window first and the room comes back only when the outcome
    is in the database, so the rows a killed process leaves in flight (and so the
    duplicates it can cause) never exceed the window, however many activities it works on.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        # First come, first served: (wanted, minimum, future resolved with the room taken).
        self._waiters: deque[tuple[int, int, asyncio.Future[int]]] = deque()

    @property
    def free(self) -> int:
        return self.size - self.used

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def admits_after(self, returned: int) -> bool:
        """Whether giving back `returned` places would let the first waiting claim go."""
        return bool(self._waiters) and self.free + returned >= self._waiters[0][1]

    async def reserve(self, wanted: int, minimum: int) -> int:
        """Wait until at least `minimum` (at most `wanted`) places are free; take up to
        `wanted` of them and return how many were taken."""
        wanted = max(1, min(wanted, self.size))
        minimum = max(1, min(minimum, wanted))
        if not self._waiters and self.free >= minimum:
            return self._take(wanted)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (wanted, minimum, waiter)
        self._waiters.append(entry)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            elif entry in self._waiters:  # a release may have passed over it already
                self._waiters.remove(entry)
            raise

    def release(self, count: int) -> None:
        if count <= 0:
            return
        self.used = max(0, self.used - count)
        while self._waiters and self.free >= self._waiters[0][1]:
            wanted, _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._take(wanted))

    def _take(self, wanted: int) -> int:
        taken = min(wanted, self.free)
        self.used += taken
        return taken
