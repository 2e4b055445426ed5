"""Publishing to an existing Mastodon account through its REST API."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from aiohttp import web
from sqlalchemy import select, update

from bench.harness.delivery_scenarios import create_account, publish
from federation.activitypub.urls import InstanceUrls
from federation.activitypub.vocabulary import AS_CONTEXT, PUBLIC
from service.db.engine import Database
from service.db.models import (
    Account,
    Delivery,
    DeliveryAttempt,
    MastodonStatus,
    MastodonTarget,
    Post,
)
from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, delivery_session, inbox_connections
from service.mastodon.status_delivery import MastodonDelivery, idempotency_key
from service.runtime.secret_box import decrypt_secret, encrypt_secret
from service.runtime.settings import Settings

INSTANCE = "https://mastodon.example"
TOKEN = "secret-access-token"
CANONICAL = "https://blog.example/posts/hello"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    """A real loopback server for the attachment the relay downloads before uploading."""
    app = web.Application()

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app.router.add_get("/cat.png", image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/cat.png"
    await runner.cleanup()


class Relay:
    """An account with a Mastodon target, and an engine that delivers to it."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings.model_copy(update={"delivery_retry_time_scale": 0.001})
        self.urls = InstanceUrls(settings.base_url)
        self.session = delivery_session(test_mode=True, concurrency=8, per_host=4)
        self.connections = inbox_connections(test_mode=True, concurrency=8, per_host=4)
        self.mastodon = MastodonDelivery(
            self.settings, database, media_session=self.session, media_poll_interval=0.01
        )
        self.engine = DeliveryEngine(
            self.settings,
            database,
            None,
            InboxPoster(self.connections, test_mode=True),
            mastodon=self.mastodon,
        )
        self.account: Account
        self.target_id = 0
        self.post: Post

    async def setup(self, image_url: str | None = None) -> None:
        self.account = await create_account(self.database)
        document: dict[str, Any] = {
            "id": self.urls.object(str(uuid.uuid4())),
            "type": "Note",
            "content": "<p>Hello <b>world</b></p>",
            "summary": "food",
            "contentMap": {"de": "<p>Hello <b>world</b></p>"},
            "url": CANONICAL,
            "to": [PUBLIC],
        }
        if image_url:
            document["attachment"] = [
                {"type": "Image", "mediaType": "image/png", "url": image_url, "name": "A cat"}
            ]
        async with self.database.transaction() as session:
            target = MastodonTarget(
                account_id=self.account.id,
                instance_url=INSTANCE,
                access_token_encrypted=encrypt_secret(self.settings.effective_secret_key, TOKEN),
                visibility="unlisted",
            )
            session.add(target)
            post = Post(
                account_id=self.account.id,
                object_uri=document["id"],
                source="api",
                source_id=str(uuid.uuid4()),
                canonical_url=CANONICAL,
                document=document,
                state="published",
                published_at=datetime.now(UTC),
            )
            session.add(post)
            await session.flush()
            self.target_id, self.post = target.id, post

    async def publish(self, kind: str) -> int:
        activity = {
            "@context": AS_CONTEXT,
            "id": self.urls.activity(str(uuid.uuid4())),
            "type": kind,
            "actor": self.urls.account(self.account.handle).actor,
            "object": self.post.document,
        }
        published = await publish(
            self.database, self.account, activity, ordering_key=self.post.object_uri, post=self.post
        )
        return published.activity_row_id

    async def deliver(self, activity_row_id: int) -> Delivery:
        await self.engine.deliver_activity(activity_row_id)
        return await self.delivery(activity_row_id)

    async def delivery(self, activity_row_id: int) -> Delivery:
        async with self.database.session() as session:
            found = await session.scalar(
                select(Delivery).where(Delivery.activity_id == activity_row_id)
            )
        assert found is not None
        return found

    async def make_due(self, activity_row_id: int) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.activity_id == activity_row_id)
                .values(next_attempt_at=datetime.now(UTC))
            )

    async def remember_status(self, status_id: str) -> None:
        async with self.database.transaction() as session:
            session.add(
                MastodonStatus(target_id=self.target_id, post_id=self.post.id, status_id=status_id)
            )

    async def close(self) -> None:
        await self.engine.close()
        await self.mastodon.close()
        await self.session.close()
        await self.connections.close()


@pytest.fixture
async def relay(database: Database, settings: Settings) -> AsyncIterator[Relay]:
    relay = Relay(database, settings)
    yield relay
    await relay.close()


def _status(status_id: str = "109") -> dict[str, Any]:
    return {
        "id": status_id,
        "url": f"{INSTANCE}/@news/{status_id}",
        "content": f'<p>Hello world</p><p><a href="{CANONICAL}">{CANONICAL}</a></p>',
    }


async def test_publishing_creates_one_delivery_per_mastodon_target(relay: Relay) -> None:
    await relay.setup()
    activity_id = await relay.publish("Create")
    delivery = await relay.delivery(activity_id)
    assert delivery.mastodon_target_id == relay.target_id
    assert delivery.host == "mastodon.example"


@respx.mock(assert_all_mocked=True)
async def test_create_uploads_media_waits_for_processing_and_posts_the_status(
    respx_mock: respx.MockRouter, relay: Relay, image_server: str
) -> None:
    await relay.setup(image_url=image_server)
    upload = respx_mock.post(f"{INSTANCE}/api/v2/media").respond(
        202, json={"id": "m1", "url": None}
    )
    poll = respx_mock.get(f"{INSTANCE}/api/v1/media/m1").mock(
        side_effect=[
            httpx.Response(206, json={"id": "m1", "url": None}),
            httpx.Response(200, json={"id": "m1", "url": f"{INSTANCE}/m1.png"}),
        ]
    )
    create = respx_mock.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=_status())
    activity_id = await relay.publish("Create")

    delivery = await relay.deliver(activity_id)

    assert delivery.state == "delivered"
    assert poll.call_count == 2
    uploaded = upload.calls[0].request
    assert uploaded.headers["Authorization"] == f"Bearer {TOKEN}"
    assert b'name="description"\r\n\r\nA cat' in uploaded.content
    assert PNG in uploaded.content
    sent = create.calls[0].request
    body = json.loads(sent.content)
    assert body == {
        "status": f"Hello world\n\n{CANONICAL}",
        "visibility": "unlisted",
        "sensitive": True,
        "spoiler_text": "food",
        "language": "de",
        "media_ids": ["m1"],
    }
    assert sent.headers["Idempotency-Key"].startswith("fedirelay-")
    async with relay.database.session() as session:
        stored = await session.scalar(select(MastodonStatus))
    assert stored is not None and stored.status_id == "109"


@respx.mock(assert_all_mocked=True)
async def test_a_retry_sends_the_same_idempotency_key(
    respx_mock: respx.MockRouter, relay: Relay
) -> None:
    await relay.setup()
    create = respx_mock.post(f"{INSTANCE}/api/v1/statuses").mock(
        side_effect=[httpx.Response(503, text="busy"), httpx.Response(200, json=_status())]
    )
    activity_id = await relay.publish("Create")

    first = await relay.deliver(activity_id)
    await relay.make_due(activity_id)
    second = await relay.deliver(activity_id)

    assert first.state == "retrying" and first.last_status == 503
    assert second.state == "delivered" and second.attempts == 2
    keys = {call.request.headers["Idempotency-Key"] for call in create.calls}
    assert len(create.calls) == 2 and len(keys) == 1


@respx.mock(assert_all_mocked=True, assert_all_called=False)
async def test_a_retry_after_the_idempotency_window_finds_the_existing_status(
    respx_mock: respx.MockRouter, relay: Relay
) -> None:
    await relay.setup()
    respx_mock.get(f"{INSTANCE}/api/v1/accounts/verify_credentials").respond(200, json={"id": "42"})
    respx_mock.get(f"{INSTANCE}/api/v1/accounts/42/statuses").respond(
        200, json=[_status("77"), _status("109")]
    )
    create = respx_mock.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=_status("999"))
    activity_id = await relay.publish("Create")
    delivery = await relay.delivery(activity_id)
    async with relay.database.transaction() as session:
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                attempted_at=datetime.now(UTC) - timedelta(hours=2),
                error="timeout",
            )
        )
        await session.execute(
            update(Delivery).where(Delivery.id == delivery.id).values(state="retrying", attempts=1)
        )

    delivered = await relay.deliver(activity_id)

    assert delivered.state == "delivered"
    assert create.call_count == 0
    async with relay.database.session() as session:
        stored = await session.scalar(select(MastodonStatus))
    assert stored is not None and stored.status_id == "77"


@respx.mock(assert_all_mocked=True)
async def test_an_update_edits_the_status(respx_mock: respx.MockRouter, relay: Relay) -> None:
    await relay.setup()
    await relay.remember_status("109")
    edit = respx_mock.put(f"{INSTANCE}/api/v1/statuses/109").respond(200, json=_status())
    activity_id = await relay.publish("Update")

    delivery = await relay.deliver(activity_id)

    assert delivery.state == "delivered"
    body = json.loads(edit.calls[0].request.content)
    assert body["status"] == f"Hello world\n\n{CANONICAL}"
    assert "visibility" not in body


@respx.mock(assert_all_mocked=True)
async def test_a_delete_deletes_the_status(respx_mock: respx.MockRouter, relay: Relay) -> None:
    await relay.setup()
    await relay.remember_status("109")
    removal = respx_mock.delete(f"{INSTANCE}/api/v1/statuses/109").respond(200, json=_status())
    activity_id = await relay.publish("Delete")

    delivery = await relay.deliver(activity_id)

    assert delivery.state == "delivered"
    assert removal.call_count == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (422, "Validation failed: Text character limit of 500 exceeded"),
        (401, "The access token is invalid"),
    ],
)
@respx.mock(assert_all_mocked=True)
async def test_unprocessable_and_unauthorized_are_permanent_and_keep_the_instances_message(
    respx_mock: respx.MockRouter, relay: Relay, status: int, message: str
) -> None:
    await relay.setup()
    create = respx_mock.post(f"{INSTANCE}/api/v1/statuses").respond(status, json={"error": message})
    activity_id = await relay.publish("Create")

    delivery = await relay.deliver(activity_id)

    assert delivery.state == "dead" and delivery.attempts == 1
    assert delivery.last_status == status
    assert delivery.last_error is not None and message in delivery.last_error
    assert create.call_count == 1


@respx.mock(assert_all_mocked=True)
async def test_a_rate_limited_answer_delays_the_retry_until_the_window_resets(
    respx_mock: respx.MockRouter, relay: Relay
) -> None:
    await relay.setup()
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    respx_mock.post(f"{INSTANCE}/api/v1/statuses").respond(
        429,
        json={"error": "Too many requests"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.isoformat()},
    )
    activity_id = await relay.publish("Create")

    delivery = await relay.deliver(activity_id)

    assert delivery.state == "retrying"
    # Scaled by the test clock: the hour the instance asked for becomes 3.6 s, never less.
    assert delivery.next_attempt_at >= datetime.now(UTC) + timedelta(seconds=3)


@respx.mock(assert_all_mocked=True)
async def test_an_exhausted_rate_limit_holds_further_requests_until_the_reset(
    respx_mock: respx.MockRouter, relay: Relay
) -> None:
    await relay.setup()
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    create = respx_mock.post(f"{INSTANCE}/api/v1/statuses").respond(
        200,
        json=_status(),
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.isoformat()},
    )
    first = await relay.deliver(await relay.publish("Create"))
    async with relay.database.transaction() as session:
        await session.execute(MastodonStatus.__table__.delete())
    second_id = await relay.publish("Create")
    second = await relay.deliver(second_id)

    assert first.state == "delivered"
    assert create.call_count == 1
    assert second.state == "pending" and second.attempts == 0
    assert second.next_attempt_at == reset


def test_the_idempotency_key_is_stable_per_target_and_activity() -> None:
    assert idempotency_key(1, "https://r/a/1") == idempotency_key(1, "https://r/a/1")
    assert idempotency_key(1, "https://r/a/1") != idempotency_key(2, "https://r/a/1")


async def test_the_admin_api_stores_the_token_encrypted_and_never_returns_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database: Database, settings: Settings
) -> None:
    await create_account(database, "news")
    created = await client.post(
        "/api/admin/accounts/news/mastodon-targets",
        json={"instance_url": INSTANCE, "access_token": TOKEN, "visibility": "public"},
        headers=admin_headers,
    )
    listed = await client.get("/api/admin/accounts/news/mastodon-targets", headers=admin_headers)

    assert created.status_code == 201
    assert TOKEN not in created.text and TOKEN not in listed.text
    assert listed.json()[0]["instance_url"] == INSTANCE
    async with database.session() as session:
        stored = await session.scalar(select(MastodonTarget.access_token_encrypted))
    assert stored is not None and TOKEN not in stored
    assert decrypt_secret(settings.effective_secret_key, stored) == TOKEN


async def test_a_target_can_be_removed(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database: Database
) -> None:
    await create_account(database, "news")
    created = await client.post(
        "/api/admin/accounts/news/mastodon-targets",
        json={"instance_url": INSTANCE, "access_token": TOKEN},
        headers=admin_headers,
    )
    target_id = created.json()["id"]
    removed = await client.delete(
        f"/api/admin/accounts/news/mastodon-targets/{target_id}", headers=admin_headers
    )
    again = await client.delete(
        f"/api/admin/accounts/news/mastodon-targets/{target_id}", headers=admin_headers
    )
    assert removed.status_code == 204
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


async def test_a_target_with_an_unusable_instance_url_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database: Database
) -> None:
    await create_account(database, "news")
    answer = await client.post(
        "/api/admin/accounts/news/mastodon-targets",
        json={"instance_url": "ftp://mastodon.example", "access_token": TOKEN},
        headers=admin_headers,
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("invalid-instance-url")
