"""JobQueue: the one way the relay puts work on Redis, one job of a declared task
(service.runtime.tasks) at a time.

Redis is transport only. Every job refers to state already committed to the database, and the
sweepers re-enqueue anything whose job was lost, so a failed enqueue is logged, not fatal.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeVar

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from service.runtime.tasks import Task

log = logging.getLogger(__name__)
Argument = TypeVar("Argument")


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 1
    return settings


class JobQueue:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    @classmethod
    async def connect(cls, url: str, queue_name: str) -> JobQueue:
        return cls(
            await create_pool(redis_settings(url), default_queue_name=queue_name), queue_name
        )

    async def enqueue(
        self,
        task: Task[Argument],
        argument: Argument,
        *,
        job_id: str | None = None,
        defer_until: datetime | None = None,
    ) -> bool:
        """Enqueue a job of `task`; False when Redis is unreachable or the job id is already
        queued."""
        if job_id is not None:
            # arq's job ids are global to the Redis database; prefixing the queue name keeps
            # relays (or test runs) that share one Redis from blocking each other's jobs.
            job_id = f"{self.queue_name}:{job_id}"
        try:
            job = await self.redis.enqueue_job(
                task.name,
                argument,
                _job_id=job_id,
                _queue_name=self.queue_name,
                _defer_until=defer_until,
            )
        except (RedisError, OSError) as exc:
            log.warning("enqueue of %s failed; the sweeper will retry: %s", task.name, exc)
            return False
        return job is not None

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.redis.aclose()
