"""arq worker settings: which tasks run, and the per-process resources they share."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Awaitable, Callable
from typing import Any

from arq.cron import CronJob
from arq.worker import Function

from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.runtime.job_queue import JobQueue, redis_settings
from service.runtime.settings import Settings, get_settings
from service.runtime.structured_logs import (
    CONSOLE_ONLY_MODULES,
    bind_job_context,
    configure_logging,
    without_optional_modules,
)
from workers.health_check import HEALTH_CHECK_INTERVAL_SECONDS, health_check_key
from workers.task_functions import TaskFunction

# Task modules register here; each exposes TASKS (TaskFunctions: a declared task and the
# coroutine that runs it) and CRON_JOBS, or either, and optionally STARTUP and SHUTDOWN hooks
# that receive the ctx.
TASK_MODULES: tuple[str, ...] = (
    "workers.inbox_tasks",
    "workers.delivery_tasks",
    "workers.webhook_tasks",
    "workers.scheduling_tasks",
    "workers.forge_polling_tasks",
    "workers.community_tasks",
)


# glibc's mallopt parameter number for the arena limit (M_ARENA_MAX in malloc.h).
_M_ARENA_MAX = -8
# glibc gives every thread that allocates an arena of its own (up to eight per core) and
# seldom hands their free pages back; the worker's threads (RSA signing, one per aiosqlite
# connection, uvloop's resolver) left a dozen arenas holding about 17 MB between them.
# With two, the event loop keeps the main arena and the other threads share the second.
WORKER_MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = WORKER_MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, before its threads start; an operator's
    MALLOC_ARENA_MAX wins. True if the limit was set (False on a libc without mallopt)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def _modules() -> list[Any]:
    import importlib

    # httpx imports rich and pygments for its command line whenever they are installed.
    with without_optional_modules(*CONSOLE_ONLY_MODULES):
        return [importlib.import_module(name) for name in TASK_MODULES]


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    configure_logging(settings)
    ctx["database"] = Database(settings.effective_database_url)
    ctx["queue"] = JobQueue(ctx["redis"], settings.queue_name)
    ctx["urls"] = InstanceUrls(settings.base_url)
    ctx["resources"] = {}
    for module in _modules():
        hook: Callable[[dict[str, Any]], Awaitable[None]] | None = getattr(module, "STARTUP", None)
        if hook is not None:
            await hook(ctx)
    ctx["ready"] = True


async def shutdown(ctx: dict[str, Any]) -> None:
    for module in reversed(_modules()):
        hook: Callable[[dict[str, Any]], Awaitable[None]] | None = getattr(module, "SHUTDOWN", None)
        if hook is not None:
            await hook(ctx)
    database: Database | None = ctx.get("database")
    if database is not None:
        await database.dispose()


def task_functions() -> list[Function]:
    """Every task module's functions, each under the name its task is declared with."""
    functions: list[Function] = []
    for module in _modules():
        entries: list[TaskFunction[Any]] = getattr(module, "TASKS", [])
        functions.extend(entry.arq_function() for entry in entries)
    return functions


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, built from the relay's settings."""
    cron_jobs: list[CronJob] = []
    for module in _modules():
        cron_jobs.extend(getattr(module, "CRON_JOBS", []))
    if not settings.redis_url:
        raise RuntimeError("FEDIRELAY_REDIS_URL is not set (use `fedirelay run` for development)")
    options: dict[str, Any] = {
        "functions": task_functions(),
        "cron_jobs": cron_jobs,
        "redis_settings": redis_settings(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "on_job_start": bind_job_context,
        "ctx": {"settings": settings},
        "max_jobs": 50,
        # arq's default 0.5 s poll would dominate webhook-to-inbox latency (two queue hops).
        "poll_delay": 0.05,
        "job_timeout": 300,
        # Retries are scheduled by the relay from the database, never by arq.
        "max_tries": 1,
        "keep_result": 0,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        "health_check_key": health_check_key(settings),
        "handle_signals": True,
    }
    options.update(overrides)
    return options
