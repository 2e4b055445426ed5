"""Health of one destination server: a circuit breaker and Mastodon's dead-server rule.

Circuit breaker: after a burst of consecutive failures the host is left alone for a cool-off
(doubling with each failed probe up to a ceiling); when it ends, one delivery is let through
as a probe and the rest wait for its result.

Dead-server rule (as Mastodon applies it): a host that failed on 7 distinct UTC days with no
success in between is unavailable. Its deliveries are parked, not attempted, until a delivery
to it succeeds or a verified activity arrives from it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

HEALTH_OK: Final = "ok"
HEALTH_FAILING: Final = "failing"
HEALTH_UNAVAILABLE: Final = "unavailable"


@dataclass(frozen=True, slots=True)
class HostPolicy:
    breaker_threshold: int = 10
    breaker_cooloff_seconds: float = 60.0
    breaker_max_cooloff_seconds: float = 3600.0
    # How long a probe holds the host before others may try again (longer than a request).
    probe_hold_seconds: float = 45.0
    unavailable_after_days: int = 7


@dataclass(frozen=True, slots=True)
class HostHealth:
    consecutive_failures: int = 0
    failure_days: tuple[str, ...] = ()
    breaker_open_until: datetime | None = None
    unavailable: bool = False

    @property
    def label(self) -> str:
        if self.unavailable:
            return HEALTH_UNAVAILABLE
        return HEALTH_FAILING if self.consecutive_failures else HEALTH_OK

    @property
    def is_clean(self) -> bool:
        return self == HEALTHY


HEALTHY: Final = HostHealth()


class Admission(enum.StrEnum):
    ALLOW = "allow"
    PROBE = "probe"  # the one request allowed after a cool-off
    WAIT = "wait"  # breaker open: try again at `breaker_open_until`
    PARKED = "parked"  # dead-server rule: do not try until the host shows signs of life


def admission(health: HostHealth, now: datetime, policy: HostPolicy) -> Admission:
    if health.unavailable:
        return Admission.PARKED
    if health.breaker_open_until is not None and now < health.breaker_open_until:
        return Admission.WAIT
    if health.consecutive_failures >= policy.breaker_threshold:
        return Admission.PROBE
    return Admission.ALLOW


def take_probe(health: HostHealth, now: datetime, policy: HostPolicy) -> HostHealth:
    """Hold the host for the probe so concurrent deliveries wait for its result."""
    return replace(health, breaker_open_until=now + timedelta(seconds=policy.probe_hold_seconds))


def record_success(health: HostHealth) -> HostHealth:
    return HEALTHY


def record_failure(
    health: HostHealth, now: datetime, policy: HostPolicy, *, probe: bool = False
) -> HostHealth:
    """Record a failed request. Once the breaker is open, only a failed probe counts again
    (doubling the cool-off); requests that were already in flight when it opened record the
    day for the dead-server rule but neither extend the cool-off nor count as probes."""
    today = now.date().isoformat()
    days = health.failure_days if today in health.failure_days else (*health.failure_days, today)
    # Only the most recent days matter for the rule; the list stays bounded.
    days = days[-policy.unavailable_after_days :]
    open_until = health.breaker_open_until
    tripped = health.consecutive_failures >= policy.breaker_threshold
    failures = (
        health.consecutive_failures if tripped and not probe else health.consecutive_failures + 1
    )
    if failures >= policy.breaker_threshold and (probe or not tripped):
        doublings = min(failures - policy.breaker_threshold, 32)
        cooloff = min(
            policy.breaker_cooloff_seconds * (2**doublings), policy.breaker_max_cooloff_seconds
        )
        open_until = now + timedelta(seconds=cooloff)
    return HostHealth(
        consecutive_failures=failures,
        failure_days=days,
        breaker_open_until=open_until,
        unavailable=len(days) >= policy.unavailable_after_days,
    )


def mark_reachable(health: HostHealth) -> HostHealth:
    """A sign of life from the host (a verified inbound activity) clears everything."""
    return HEALTHY
