"""Remote peers for federation tests: fleet actors (real HTTP servers on loopback that
serve their actor documents and keys) and signed requests from them to the relay."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from bench.harness.fleet import FleetActor
from federation.activitypub.vocabulary import AS_CONTEXT, PUBLIC
from federation.signatures.cavage import sign_request
from federation.signatures.time_window import format_http_date
from service.accounts.store import AccountStore
from service.db.engine import Database
from service.db.models import Account, Post
from service.runtime.settings import Settings

ACTIVITY_JSON = "application/activity+json"


async def create_account(database: Database, handle: str = "news", **profile: Any) -> Account:
    async with database.transaction() as session:
        return await AccountStore(session).create(handle, **profile)


async def create_post(
    database: Database,
    settings: Settings,
    account: Account,
    *,
    state: str = "published",
    pinned: bool = False,
    url: str | None = "https://blog.example/posts/1",
) -> Post:
    from datetime import UTC, datetime

    object_uuid = str(uuid.uuid4())
    object_id = f"{settings.base_url}/objects/{object_uuid}"
    actor = f"{settings.base_url}/users/{account.handle}"
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": object_id,
        "type": "Note",
        "attributedTo": actor,
        "content": "<p>Hello <strong>fediverse</strong></p>",
        "published": "2024-05-01T12:00:00Z",
        "to": [PUBLIC],
        "cc": [f"{actor}/followers"],
    }
    if url:
        document["url"] = url
    now = datetime.now(UTC)
    post = Post(
        account_id=account.id,
        object_uri=object_id,
        object_type="Note",
        source="api",
        source_id=object_uuid,
        document=document,
        state=state,
        published_at=now if state in ("published", "deleted") else None,
        deleted_at=now if state == "deleted" else None,
        pinned_at=now if pinned else None,
    )
    async with database.transaction() as session:
        session.add(post)
    return post


def activity_from(actor: FleetActor, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{actor.host.base_url}/activities/{kind.lower()}-{uuid.uuid4().hex}",
        "type": kind,
        "actor": actor.id,
        "object": obj,
    }
    activity.update(extra)
    return activity


def signed_headers(
    actor: FleetActor,
    url: str,
    body: bytes,
    *,
    key_id: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    headers = sign_request(
        "POST",
        url,
        {"Content-Type": ACTIVITY_JSON},
        body,
        key_id or actor.key_id,
        actor.key.private_key,
        now=now,
    )
    return {"Content-Type": ACTIVITY_JSON, **headers}


async def post_signed(
    client: httpx.AsyncClient,
    settings: Settings,
    actor: FleetActor,
    document: dict[str, Any],
    *,
    path: str = "/inbox",
) -> httpx.Response:
    body = json.dumps(document).encode()
    url = f"{settings.base_url}{path}"
    return await client.post(path, content=body, headers=signed_headers(actor, url, body))


def stale_date() -> str:
    return format_http_date(time.time() - 2 * 3600)
