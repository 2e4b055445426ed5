"""Signing and sending webhooks the way the CMS, Ghost, Forgejo and GitHub do, plus the
accounts, followers and row counts the webhook tests look at."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from federation.activitypub.urls import InstanceUrls
from federation.sources.webhook_signatures import (
    sign_forge_webhook,
    sign_ghost_webhook,
    sign_github_webhook,
    sign_standard_webhook,
)
from service.accounts.store import AccountStore
from service.db.engine import Database
from service.db.models import Account, Activity, Delivery, Follower, Post, WebhookEvent
from service.publishing.webhook_events import process_webhook_event
from service.runtime.settings import Settings

PAYLOADS = Path(__file__).parent / "payloads"
CMS_SECRET = "whsec_" + base64.b64encode(b"cms-signing-key-0123456789abcdef").decode()
CMS_OLD_SECRET = "raw-old-cms-secret"
GHOST_SECRET = "ghost-secret-5f2a"
FORGEJO_SECRET = "forgejo-secret-77c1"
GITHUB_SECRET = "github-secret-9e0b"


def with_webhook_secrets(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "cms_webhook_secrets": f"{CMS_SECRET},{CMS_OLD_SECRET}",
            "ghost_webhook_secret": GHOST_SECRET,
            "forgejo_webhook_secret": FORGEJO_SECRET,
            "github_webhook_secret": GITHUB_SECRET,
            **changes,
        }
    )


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def payload_json(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(payload(name))
    return result


def cms_body(**changes: Any) -> bytes:
    return json.dumps({**payload_json("cms_published.json"), **changes}).encode()


async def send_cms(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    message_id: str | None = None,
    timestamp: int | None = None,
    secret: str = CMS_SECRET,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    sent_at = int(time.time()) if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": sign_standard_webhook(secret, message_id, sent_at, body),
    }
    return await client.post("/hooks/cms", content=body, headers=headers, params=params)


async def send_ghost(
    client: httpx.AsyncClient, body: bytes, *, timestamp_ms: int | None = None
) -> httpx.Response:
    sent_at = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    headers = {
        "content-type": "application/json",
        "x-ghost-signature": sign_ghost_webhook(GHOST_SECRET, body, sent_at),
    }
    return await client.post("/hooks/ghost", content=body, headers=headers)


async def send_forgejo(
    client: httpx.AsyncClient,
    event: str,
    body: bytes,
    *,
    delivery: str | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "x-forgejo-event": event,
        "x-gitea-event": event,
        "x-forgejo-delivery": delivery or str(uuid.uuid4()),
        "x-forgejo-signature": sign_forge_webhook(FORGEJO_SECRET, body),
        "x-gitea-signature": sign_forge_webhook(FORGEJO_SECRET, body),
    }
    return await client.post("/hooks/forgejo", content=body, headers=headers, params=params)


async def send_github(
    client: httpx.AsyncClient, event: str, body: bytes, *, delivery: str | None = None
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": sign_github_webhook(GITHUB_SECRET, body),
    }
    return await client.post("/hooks/github", content=body, headers=headers)


async def create_account(
    database: Database,
    handle: str,
    *,
    followers: int = 0,
    routing: dict[str, Any] | None = None,
    **profile: Any,
) -> Account:
    """An account with `followers` accepted followers on distinct remote servers."""
    async with database.transaction() as session:
        account = await AccountStore(session).create(handle, **profile)
        account.routing = routing or {}
        for number in range(followers):
            host = f"remote{number}.test"
            session.add(
                Follower(
                    account_id=account.id,
                    actor_uri=f"http://{host}/users/{handle}-fan",
                    host=host,
                    inbox=f"http://{host}/users/{handle}-fan/inbox",
                    shared_inbox=f"http://{host}/inbox",
                    state="accepted",
                )
            )
    return account


async def process_received(database: Database, settings: Settings) -> list[dict[str, Any] | None]:
    """Run the worker's processing for every stored delivery, as the queue would."""
    async with database.session() as session:
        event_ids = list(
            (
                await session.execute(
                    select(WebhookEvent.id)
                    .where(WebhookEvent.state == "received")
                    .order_by(WebhookEvent.id)
                )
            ).scalars()
        )
    urls = InstanceUrls(settings.base_url)
    return [
        await process_webhook_event(database, None, urls, settings, event_id)
        for event_id in event_ids
    ]


async def row_counts(database: Database) -> dict[str, int]:
    async with database.session() as session:
        counts = {}
        for name, model in (
            ("posts", Post),
            ("activities", Activity),
            ("deliveries", Delivery),
            ("webhook_events", WebhookEvent),
        ):
            counts[name] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return counts


async def activities(database: Database) -> list[Activity]:
    async with database.session() as session:
        return list((await session.execute(select(Activity).order_by(Activity.id))).scalars())


async def posts(database: Database) -> list[Post]:
    async with database.session() as session:
        return list((await session.execute(select(Post).order_by(Post.id))).scalars())
