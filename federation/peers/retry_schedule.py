"""When a failed delivery is tried again, and which failures are worth trying again.

The schedule is a pure function of the retry number, so it lives in the database as
`next_attempt_at` and survives restarts of every process; nothing here sleeps.

Mastodon retries a delivery 16 times with Sidekiq's default backoff (about `n**4 + 15`
seconds before retry n, roughly two days in all). Ours waits `15 + n**4` seconds plus up to
10 % jitter before retry n, 16 retries: 2.8 to 3.1 days, so a server that Mastodon would
still reach is reached by the relay too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

MASTODON_RETRIES: Final = 16
# Sidekiq's default backoff as used by Mastodon's delivery worker, without its jitter.
MASTODON_MINIMUM_SECONDS: Final = sum(n**4 + 15 for n in range(MASTODON_RETRIES))


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"  # try again later
    PERMANENT = "permanent"  # stop now: the request itself is refused
    GONE = "gone"  # stop now: the inbox no longer exists


def classify_status(status: int) -> Verdict:
    """What an inbox's HTTP status says about the delivery.

    Redirects are not followed for a signed POST (the signature covers the target), so a 3xx
    is retried in case it was a transient misconfiguration. 401 is retried because it is
    mostly a key-fetch race on the receiving side; 408 and 429 ask for a later retry.
    """
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (404, 410):
        return Verdict.GONE
    if status == 501:
        return Verdict.PERMANENT
    if status >= 500 or status in (401, 408, 429) or 300 <= status < 400:
        return Verdict.TRANSIENT
    if 400 <= status < 500:
        return Verdict.PERMANENT
    return Verdict.TRANSIENT


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """`time_scale` shrinks every wait proportionally (tests only; 1.0 in production)."""

    max_retries: int = MASTODON_RETRIES
    base_seconds: float = 15.0
    exponent: float = 4.0
    jitter_fraction: float = 0.1
    retry_after_ceiling_seconds: float = 6 * 3600.0
    time_scale: float = 1.0

    def base_delay(self, retry_number: int) -> float:
        """Seconds before retry `retry_number` (1-based), without jitter."""
        growth: float = float(retry_number) ** self.exponent
        return (self.base_seconds + growth) * self.time_scale

    def delay(self, retry_number: int, random_fraction: float) -> float:
        """`random_fraction` in [0, 1) spreads retries so a recovering host is not stampeded."""
        fraction = min(max(random_fraction, 0.0), 1.0)
        return self.base_delay(retry_number) * (1.0 + self.jitter_fraction * fraction)

    def next_delay(
        self, attempts_made: int, random_fraction: float, retry_after: float | None = None
    ) -> float | None:
        """Seconds until the next attempt after `attempts_made` attempts, or None when the
        schedule is exhausted. A server's Retry-After is honoured up to the ceiling."""
        if attempts_made < 1:
            return 0.0
        if attempts_made > self.max_retries:
            return None
        wait = self.delay(attempts_made, random_fraction)
        if retry_after is not None and retry_after > 0:
            asked = min(retry_after, self.retry_after_ceiling_seconds) * self.time_scale
            wait = max(wait, asked)
        return wait

    def total_seconds(self) -> float:
        """How long the whole schedule lasts without jitter: the shortest possible span."""
        return sum(self.base_delay(n) for n in range(1, self.max_retries + 1))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a `Retry-After` field (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 10**9))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
