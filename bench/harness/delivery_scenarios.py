"""Building blocks for delivery tests: an account, fleet followers, published activities."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from arq.worker import Worker
from sqlalchemy import func, insert, select

from bench.harness.fleet import FakeHost, Fleet
from bench.harness.relay_harness import running_worker
from federation.activitypub.urls import InstanceUrls
from federation.activitypub.vocabulary import AS_CONTEXT, PUBLIC
from service.accounts.store import AccountStore, active_key
from service.db.engine import Database
from service.db.models import Account, Delivery, Follower, Post
from service.publishing.activity_records import (
    PublishedActivity,
    enqueue_deliveries,
    publish_activity,
)
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

DONE_STATES = ("delivered", "dead", "discarded")


def fast_settings(settings: Settings, **changes: Any) -> Settings:
    """Retries in milliseconds instead of days, so schedules run to the end in a test."""
    update: dict[str, Any] = {"delivery_retry_time_scale": 0.001, "delivery_max_retries": 6}
    update.update(changes)
    return settings.model_copy(update=update)


async def create_account(database: Database, handle: str = "news") -> Account:
    async with database.transaction() as session:
        account = await AccountStore(session).create(handle)
    return account


def trust_account_key(fleet: Fleet, account: Account, urls: InstanceUrls) -> None:
    actor = urls.account(account.handle)
    fleet.trust_key(actor.rsa_key, active_key(account, "rsa").public_pem, owner=actor.actor)


async def follow_from_fleet(
    database: Database, account: Account, fleet: Fleet, hosts: Sequence[FakeHost] | None = None
) -> int:
    """Every fleet actor (of the given hosts) follows the account, with its shared inbox."""
    chosen = set(id(host) for host in (hosts or fleet.hosts))
    rows = [
        {
            "account_id": account.id,
            "actor_uri": actor.id,
            "host": actor.host.domain,
            "inbox": actor.inbox,
            "shared_inbox": actor.shared_inbox,
            "state": "accepted",
        }
        for actor in fleet.followers
        if id(actor.host) in chosen
    ]
    async with database.transaction() as session:
        await session.execute(insert(Follower), rows)
    return len(rows)


def note_activity(
    urls: InstanceUrls, account: Account, kind: str = "Create", object_id: str | None = None
) -> dict[str, Any]:
    actor = urls.account(account.handle)
    object_id = object_id or urls.object(str(uuid.uuid4()))
    note = {
        "id": object_id,
        "type": "Note",
        "attributedTo": actor.actor,
        "content": f"<p>{kind} of {object_id}</p>",
        "to": [PUBLIC],
        "cc": [actor.followers],
    }
    return {
        "@context": AS_CONTEXT,
        "id": urls.activity(str(uuid.uuid4())),
        "type": kind,
        "actor": actor.actor,
        "object": note if kind != "Delete" else {"id": object_id, "type": "Tombstone"},
        "to": [PUBLIC],
        "cc": [actor.followers],
    }


async def publish(
    database: Database,
    account: Account,
    document: dict[str, Any],
    queue: JobQueue | None = None,
    *,
    ordering_key: str | None = None,
    post: Post | None = None,
    audience: Any = "followers",
) -> PublishedActivity:
    async with database.transaction() as session:
        fresh = await session.get(Account, account.id)
        assert fresh is not None
        published = await publish_activity(
            session, fresh, document, ordering_key=ordering_key, post=post, audience=audience
        )
    await enqueue_deliveries(queue, [published])
    return published


async def delivery_states(database: Database, activity_row_id: int | None = None) -> dict[str, int]:
    async with database.session() as session:
        query = select(Delivery.state, func.count()).group_by(Delivery.state)
        if activity_row_id is not None:
            query = query.where(Delivery.activity_id == activity_row_id)
        rows = await session.execute(query)
        return {state: count for state, count in rows}


async def wait_until_finished(
    database: Database,
    activity_row_id: int | None = None,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> dict[str, int]:
    """Poll until every delivery (of the activity) is delivered, dead or discarded."""
    deadline = time.monotonic() + timeout
    while True:
        states = await delivery_states(database, activity_row_id)
        if states and all(state in DONE_STATES for state in states):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"deliveries not finished: {states}")
        await asyncio.sleep(0.1)


async def connect_queue(settings: Settings) -> JobQueue:
    assert settings.redis_url is not None
    return await JobQueue.connect(settings.redis_url, settings.queue_name)


@contextlib.asynccontextmanager
async def delivery_worker(settings: Settings) -> AsyncIterator[Worker]:
    """An in-process worker that is left only once it has no job running, so the harness
    never cancels a job halfway (arq's close would re-raise that cancellation)."""
    async with running_worker(settings) as worker:
        yield worker
        deadline = time.monotonic() + 15
        while worker.tasks and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
