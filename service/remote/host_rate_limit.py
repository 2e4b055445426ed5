"""Per-host token buckets with bounded memory.

Used to cap how often the relay fetches keys from any one remote host: a flood of
requests signed with random keyIds must not turn into a flood of outbound fetches.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class HostRateLimiter:
    """`capacity` requests in a burst, refilled at `refill_per_second`, per host.

    At most `max_hosts` buckets are kept; the least recently used one is dropped first
    (a dropped host starts again with a full bucket, which errs on the side of fetching).
    """

    def __init__(
        self,
        *,
        capacity: float = 10.0,
        refill_per_second: float = 1.0,
        max_hosts: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or refill_per_second <= 0 or max_hosts < 1:
            raise ValueError("rate limiter needs capacity >= 1, a positive rate, max_hosts >= 1")
        self._capacity = capacity
        self._rate = refill_per_second
        self._max_hosts = max_hosts
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def try_acquire(self, host: str) -> bool:
        now = self._clock()
        key = host.lower()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._capacity, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_hosts:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def __len__(self) -> int:
        return len(self._buckets)
