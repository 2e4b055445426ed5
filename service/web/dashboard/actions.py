"""Dashboard buttons, each calling the same function as the admin API does.

The admin API's handlers are the one implementation of each action (they validate, change
the database and wake the workers); the dashboard calls them and turns their problems into a
message for the page instead of a JSON error.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.urls import InstanceUrls
from service.accounts.store import AccountNotFound, AccountStore
from service.db.engine import Database
from service.db.models import Account, Follower
from service.reporting.queries import dead_letters
from service.runtime.job_queue import JobQueue
from service.web.admin_api import deliveries as admin_deliveries
from service.web.admin_api import federation as admin_federation
from service.web.admin_api import posts as admin_posts
from service.web.admin_api import webhooks as admin_webhooks
from service.web.problems import Problem


@dataclass(frozen=True, slots=True)
class ActionResult:
    code: str
    count: int | None = None
    detail: str | None = None


def failed(detail: str) -> ActionResult:
    return ActionResult("failed", None, detail)


async def _attempt(code: str, work: Awaitable[Any]) -> ActionResult:
    try:
        await work
    except Problem as problem:
        return failed(problem.detail)
    return ActionResult(code)


async def _dead_count(database: Database, host: str | None) -> int:
    async with database.session() as session:
        total, _ = await dead_letters(session, host=host, limit=1)
    return total


async def retry_dead_letters(
    database: Database,
    queue: JobQueue | None,
    *,
    delivery_id: int | None,
    host: str | None,
    everything: bool,
) -> ActionResult:
    """Retry one dead letter, a host's dead and parked deliveries, or every dead letter."""
    if delivery_id is not None:
        result = await _attempt("retried", admin_deliveries.retry_one(delivery_id, database, queue))
        return ActionResult(result.code, 1, None) if result.code == "retried" else result
    if host is None and not everything:
        return failed("choose a dead letter, a host or all")
    count = await _dead_count(database, host)
    selection = admin_deliveries.BulkSelection(host=host, all=everything and host is None)
    result = await _attempt("retried", admin_deliveries.retry_many(selection, database, queue))
    return ActionResult(result.code, count, None) if result.code == "retried" else result


async def retry_webhooks(
    database: Database, queue: JobQueue | None, *, event_id: int | None, everything: bool
) -> ActionResult:
    """Process one failed webhook event again, or every failed one."""
    try:
        if event_id is not None:
            answer = await admin_webhooks.retry_one(event_id, database, queue)
        elif everything:
            selection = admin_webhooks.BulkWebhookSelection(all=True)
            answer = await admin_webhooks.retry_many(selection, database, queue)
        else:
            return failed("choose a failed webhook or all")
    except Problem as problem:
        return failed(problem.detail)
    return ActionResult("webhooks-retried", int(answer["retried"]))


async def discard_dead_letters(
    database: Database, *, delivery_id: int | None, host: str | None
) -> ActionResult:
    if delivery_id is not None:
        result = await _attempt("discarded", admin_deliveries.discard_one(delivery_id, database))
        return ActionResult(result.code, 1, None) if result.code == "discarded" else result
    if host is None:
        return failed("choose a dead letter or a host")
    try:
        answer = await admin_deliveries.discard_many(
            admin_deliveries.BulkSelection(host=host), database
        )
    except Problem as problem:
        return failed(problem.detail)
    return ActionResult("discarded", int(answer["discarded"]))


async def set_account_paused(
    database: Database, queue: JobQueue | None, handle: str, paused: bool
) -> ActionResult:
    """Pause or resume an account; on resume the delivery sweeper picks its work up again."""
    try:
        async with database.transaction() as session:
            await AccountStore(session).update(handle, paused=paused)
    except AccountNotFound:
        return failed(f"no account @{handle}")
    return ActionResult("account-paused" if paused else "account-resumed")


async def cancel_post(database: Database, post_id: int) -> ActionResult:
    return await _attempt("cancelled", admin_posts.cancel_post(post_id, database))


def parse_local_utc(value: str) -> datetime | None:
    """A `datetime-local` form value, read as UTC (the dashboard shows every time in UTC)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def reschedule_post(
    database: Database, queue: JobQueue | None, post_id: int, when: str
) -> ActionResult:
    moment = parse_local_utc(when)
    if moment is None:
        return failed("give the new time as YYYY-MM-DDTHH:MM (UTC)")
    try:
        body = admin_posts.Reschedule(scheduled_at=moment)
    except ValidationError:
        return failed("that time is not valid")
    return await _attempt(
        "rescheduled", admin_posts.reschedule_post(post_id, body, database, queue)
    )


async def answer_follow(
    session: AsyncSession,
    urls: InstanceUrls,
    queue: JobQueue | None,
    follower_id: int,
    answer: str,
) -> ActionResult:
    follower = await session.get(Follower, follower_id)
    account = await session.get(Account, follower.account_id) if follower is not None else None
    if follower is None or account is None:
        return failed("that follow request no longer exists")
    if answer == "approve":
        work = admin_federation.approve_follower(account.handle, follower_id, session, urls, queue)
        return await _attempt("approved", work)
    work = admin_federation.reject_follower(account.handle, follower_id, session, urls, queue)
    return await _attempt("rejected", work)


async def set_host_paused(
    database: Database, queue: JobQueue | None, host: str, paused: bool
) -> ActionResult:
    """Pause or resume deliveries to a host through the delivery engine's admin API."""
    handler = admin_deliveries.pause_host if paused else admin_deliveries.resume_host
    return await _attempt(
        "host-paused" if paused else "host-resumed", handler(host, database, queue)
    )
