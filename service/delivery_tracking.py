"""Per-process delivery state with bounded memory: host health and per-host slots."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime

from federation.host_health import (
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

    def failed(self, host: str, now: datetime) -> HostHealth:
        health = record_failure(self.get(host), now, self.policy)
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
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.get(host, (None, 0))
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.per_host)
        self._slots[host] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[host]
            if users <= 1:
                del self._slots[host]
            else:
                self._slots[host] = (semaphore, users - 1)
