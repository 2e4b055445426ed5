"""Whether a worker runs on this host: the answer of `fedirelay worker --check`, the Helm
chart's worker liveness probe.

A running arq worker rewrites its health-check key every `HEALTH_CHECK_INTERVAL_SECONDS`
with a lifetime one second longer, and deletes it when it stops, so the key exists exactly
while a worker polls its queue. The key is per host: in Kubernetes the probe runs in the
worker's own container, so it answers for that pod's worker only.

The probe prints one line and exits; Kubernetes shows that line in the pod's events, so a
failure says why (no worker, or no Redis) instead of a traceback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.runtime.settings import Settings

HEALTH_CHECK_INTERVAL_SECONDS = 10
# The probe's own timeout in the chart is longer; a Redis that answers slower is unhealthy.
REDIS_TIMEOUT_SECONDS = 3.0


def health_check_key(settings: Settings) -> str:
    return f"{settings.queue_name}:health-check:{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    healthy: bool
    # One line, fit for a probe's output: the worker's own report, or why it is unhealthy.
    detail: str


async def worker_health(settings: Settings) -> WorkerHealth:
    """Read this host's health-check key from the worker's Redis."""
    if not settings.redis_url:
        return WorkerHealth(False, "FEDIRELAY_REDIS_URL is not set")
    key = health_check_key(settings)
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    try:
        report = await redis.get(key)
    except (RedisError, OSError) as exc:
        # The URL may hold a password: name only the kind of failure and redis-py's message,
        # which gives host and port.
        return WorkerHealth(False, f"Redis is unreachable: {type(exc).__name__}: {exc}")
    finally:
        await redis.aclose()
    if report is None:
        return WorkerHealth(
            False,
            f"no worker is running on this host: {key} is absent from Redis "
            f"(a worker refreshes it every {HEALTH_CHECK_INTERVAL_SECONDS} s)",
        )
    return WorkerHealth(True, f"worker is running: {report.decode(errors='replace')}")
