"""What every worker task finds in arq's ctx: built once per worker process."""

from __future__ import annotations

from typing import Any, TypedDict

from arq.connections import ArqRedis

from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings


class WorkerContext(TypedDict, total=False):
    redis: ArqRedis
    settings: Settings
    database: Database
    queue: JobQueue
    urls: InstanceUrls
    # Long-lived resources added by task modules (HTTP clients, host trackers, ...).
    resources: dict[str, Any]


def context_of(ctx: dict[str, Any]) -> WorkerContext:
    return ctx  # type: ignore[return-value]
