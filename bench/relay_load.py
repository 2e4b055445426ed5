"""Load put on a running relay: followers inserted in bulk, posts published to them.

Followers are inserted straight into the database (accepted, inbox and shared inbox on a
fleet host) so a benchmark can have 100,000 of them in seconds; the Follow handshake
itself is measured by the intake benchmark. Posts are published with the relay's own
``publish_activity`` and enqueued with ``enqueue_deliveries`` (the path a webhook takes
after it is parsed), or through the admin API when a benchmark measures the whole path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import insert, select

from bench.harness.relay_process import RelayProcesses
from federation.activitypub.vocabulary import AS_CONTEXT, PUBLIC
from service.db.models import Account, Follower
from service.publishing.activity_records import (
    PublishedActivity,
    enqueue_deliveries,
    publish_activity,
)

_INSERT_CHUNK = 5000


async def insert_followers(
    relay: RelayProcesses, host_urls: Sequence[str], per_host: int, *, shared_inbox: bool = True
) -> int:
    """Accepted followers ``follower0..per_host-1`` on every fleet host, in bulk."""
    rows: list[dict[str, Any]] = []
    for base in host_urls:
        host = base.split("://", 1)[1]
        for number in range(per_host):
            actor = f"{base}/users/follower{number}"
            rows.append(
                {
                    "account_id": relay.account_id,
                    "actor_uri": actor,
                    "host": host,
                    "inbox": f"{actor}/inbox",
                    "shared_inbox": f"{base}/inbox" if shared_inbox else None,
                    "state": "accepted",
                }
            )
    async with relay.database.transaction() as session:
        for start in range(0, len(rows), _INSERT_CHUNK):
            await session.execute(insert(Follower), rows[start : start + _INSERT_CHUNK])
    return len(rows)


def note_activity(actor_url: str, followers_url: str, object_url: str, text: str) -> dict[str, Any]:
    published = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "@context": AS_CONTEXT,
        "id": f"{object_url}/activity",
        "type": "Create",
        "actor": actor_url,
        "published": published,
        "to": [PUBLIC],
        "cc": [followers_url],
        "object": {
            "id": object_url,
            "type": "Note",
            "attributedTo": actor_url,
            "content": f"<p>{text}</p>",
            "published": published,
            "to": [PUBLIC],
            "cc": [followers_url],
        },
    }


@dataclass(frozen=True, slots=True)
class PublishedBatch:
    activities: list[PublishedActivity]
    committed_at: float  # time.monotonic() after the commit, before the enqueue

    @property
    def activity_ids(self) -> list[str]:
        return [item.activity_uri for item in self.activities]

    @property
    def delivery_count(self) -> int:
        return sum(item.delivery_count for item in self.activities)


async def publish_posts(
    relay: RelayProcesses, count: int, *, enqueue: bool = True
) -> PublishedBatch:
    """``count`` Create(Note) activities to all followers, committed in one transaction."""
    actor = relay.urls.account(relay.handle)
    published: list[PublishedActivity] = []
    async with relay.database.transaction() as session:
        account = await session.scalar(select(Account).where(Account.id == relay.account_id))
        assert account is not None
        for number in range(count):
            object_url = relay.urls.object(str(uuid.uuid4()))
            document = note_activity(actor.actor, actor.followers, object_url, f"bench {number}")
            published.append(
                await publish_activity(session, account, document, ordering_key=object_url)
            )
    committed_at = time.monotonic()
    if enqueue:
        await enqueue_deliveries(relay.queue, published)
    return PublishedBatch(published, committed_at)


@dataclass(frozen=True, slots=True)
class AcceptedPost:
    status: int
    accepted_at: float  # time.monotonic() when the 2xx answer arrived
    activity_ids: list[str]
    body: dict[str, Any]


async def post_via_admin_api(
    http: aiohttp.ClientSession, relay: RelayProcesses, title: str
) -> AcceptedPost:
    """``POST /api/admin/posts``: the whole path, from an authenticated request to the queue."""
    payload = {
        "accounts": [relay.handle],
        "title": title,
        "url": f"https://example.com/{uuid.uuid4().hex}",
        "content": f"Benchmark post {title}",
    }
    async with http.post(
        relay.base_url + "/api/admin/posts", json=payload, headers=relay.admin_headers
    ) as response:
        accepted_at = time.monotonic()
        body = await response.json(content_type=None)
    return AcceptedPost(response.status, accepted_at, activity_ids_in(body), body)


def activity_ids_in(body: Any) -> list[str]:
    """Every activity id an admin/webhook answer mentions, wherever it puts them."""
    found: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and key in ("activity_id", "activity_ids", "activity_uri"):
            found.append(value)

    walk(body)
    return found
