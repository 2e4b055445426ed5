"""What every `fedirelay` subcommand shares: running async work against the database, and
failing with a message and an exit code."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import typer

from service.db.engine import Database
from service.delivery.operator_actions import wake_activities
from service.runtime.job_queue import JobQueue
from service.runtime.settings import get_settings
from service.webhooks.intake import enqueue_processing

T = TypeVar("T")


def run_with_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run one coroutine with a database connection that is closed afterwards."""
    settings = get_settings()

    async def runner() -> T:
        database = Database(settings.effective_database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(runner())


def cli_failure(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.asynccontextmanager
async def optional_queue() -> AsyncIterator[JobQueue | None]:
    """A queue connection if Redis is configured and reachable, else None: the sweepers
    cover the rest, so a CLI run without Redis loses nothing."""
    settings = get_settings()
    if not settings.redis_url:
        yield None
        return
    try:
        queue = await JobQueue.connect(settings.redis_url, settings.queue_name)
    except OSError:
        yield None
        return
    try:
        yield queue
    finally:
        await queue.close()


async def _with_queue(work: Callable[[JobQueue], Awaitable[None]]) -> None:
    """Run `work` with a queue connection, if Redis is reachable."""
    async with optional_queue() as queue:
        if queue is not None:
            await work(queue)


async def wake_workers(activity_ids: list[int]) -> None:
    """Enqueue fan-out for committed activities."""
    if activity_ids:
        await _with_queue(lambda queue: wake_activities(queue, activity_ids))


async def wake_webhook_processing(event_ids: list[int]) -> None:
    """Enqueue processing of committed webhook events."""
    if event_ids:
        await _with_queue(lambda queue: enqueue_processing(queue, event_ids))
