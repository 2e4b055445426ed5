"""Scheduled posts: durable in the database, published once at their time, even across restarts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bench.harness.relay_harness import asgi_client, running_worker
from bench.harness.webhook_senders import activities, create_account, posts, row_counts
from federation.activitypub.urls import InstanceUrls
from service.app import create_app
from service.publishing.scheduled_posts import publish_due_post
from service.runtime.embedded_redis import EmbeddedRedis


async def schedule(client, headers, seconds: float, **body) -> int:
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    response = await client.post(
        "/api/admin/posts",
        json={"title": "Later", "accounts": ["blog"], "scheduled_at": due.isoformat(), **body},
        headers=headers,
    )
    assert response.json()["accounts"][0]["status"] == "scheduled"
    return int(response.json()["accounts"][0]["post_id"])


async def wait_for_state(database, state: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if [post.state for post in await posts(database)] == [state]:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_scheduled_post_survives_worker_and_redis_restarts(
    database, settings, admin_headers, tmp_path
):
    redis_server = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    try:
        relay = settings.model_copy(update={"redis_url": redis_server.url})
        await create_account(database, "blog", followers=2)
        app = create_app(relay)
        async with app.router.lifespan_context(app), asgi_client(app, relay.base_url) as client:
            await schedule(client, admin_headers, 4)
        async with running_worker(relay):
            await asyncio.sleep(0.5)
        # Redis comes back empty: the deferred job is gone, only the database remembers.
        redis_server.stop()
        redis_server.start()
        assert [post.state for post in await posts(database)] == ["scheduled"]
        async with running_worker(relay):
            assert await wait_for_state(database, "published", within=15)
    finally:
        redis_server.stop()
    [post] = await posts(database)
    assert post.scheduled_at <= post.published_at < post.scheduled_at + timedelta(seconds=5)
    [create] = await activities(database)
    assert create.activity_type == "Create"
    assert create.document["object"]["published"] == create.document["published"]
    assert (await row_counts(database))["deliveries"] == 2


async def test_scheduled_post_is_published_by_its_deferred_job(
    client, database, settings, admin_headers, redis
):
    await create_account(database, "blog", followers=1)
    await schedule(client, admin_headers, 1)
    async with running_worker(settings):
        assert await wait_for_state(database, "published", within=20)
    assert len(await activities(database)) == 1


async def test_cancelled_post_is_never_published(client, database, settings, admin_headers, redis):
    await create_account(database, "blog", followers=1)
    post_id = await schedule(client, admin_headers, 1)
    await client.post(f"/api/admin/posts/{post_id}/cancel", headers=admin_headers)
    async with running_worker(settings):
        await asyncio.sleep(4)
    assert [post.state for post in await posts(database)] == ["cancelled"]
    assert await activities(database) == []


async def test_post_moved_later_is_not_published_at_the_old_time(
    client, database, settings, admin_headers, redis
):
    await create_account(database, "blog")
    post_id = await schedule(client, admin_headers, 1)
    later = datetime.now(UTC) + timedelta(hours=1)
    await client.patch(
        f"/api/admin/posts/{post_id}/schedule",
        json={"scheduled_at": later.isoformat()},
        headers=admin_headers,
    )
    async with running_worker(settings):
        await asyncio.sleep(4)
    assert [post.state for post in await posts(database)] == ["scheduled"]


async def test_two_workers_racing_for_a_due_post_publish_it_once(
    client, database, settings, admin_headers
):
    await create_account(database, "blog", followers=1)
    post_id = await schedule(client, admin_headers, 1.5)
    await asyncio.sleep(1.6)
    urls = InstanceUrls(settings.base_url)

    async def attempt():
        async with database.transaction() as session:
            return await publish_due_post(session, urls, post_id, datetime.now(UTC))

    results = await asyncio.gather(attempt(), attempt(), attempt())
    assert sum(result is not None for result in results) == 1
    assert len(await activities(database)) == 1


async def test_post_not_yet_due_is_left_alone(client, database, settings, admin_headers):
    await create_account(database, "blog")
    post_id = await schedule(client, admin_headers, 60)
    async with database.transaction() as session:
        published = await publish_due_post(
            session, InstanceUrls(settings.base_url), post_id, datetime.now(UTC)
        )
    assert published is None
    assert [post.state for post in await posts(database)] == ["scheduled"]
