"""Reach and interaction analytics match what was delivered and what servers sent back."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import func, select

from bench.harness.delivery_scenarios import (
    connect_queue,
    fast_settings,
    follow_from_fleet,
    publish,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.relay_harness import loopback_settings, running_api, running_worker
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Account, Interaction, MastodonStatus, MastodonTarget, Post
from service.mastodon.counts import MastodonCountsRefresher
from service.reporting.analytics import account_analytics, post_analytics, posts_csv
from service.runtime.embedded_redis import free_port
from service.runtime.secret_box import encrypt_secret
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post

TOKEN = "mastodon-api-token"


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def mastodon_api(counts: dict[str, dict[str, int]]) -> AsyncIterator[str]:
    """A Mastodon REST API answering GET /api/v1/statuses/:id for a bearer token."""

    async def status(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "The access token is invalid"}, status=401)
        found = counts.get(request.match_info["status_id"])
        if found is None:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response({"id": request.match_info["status_id"], **found})

    app = web.Application()
    app.router.add_get("/api/v1/statuses/{status_id}", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port("127.0.0.3")
    site = web.TCPSite(runner, "127.0.0.3", port)
    await site.start()
    try:
        yield f"http://127.0.0.3:{port}"
    finally:
        await runner.cleanup()


async def _link_mastodon_status(
    database: Database, settings: Settings, account: Account, post: Post, instance: str
) -> None:
    async with database.transaction() as session:
        target = MastodonTarget(
            account_id=account.id,
            instance_url=instance,
            access_token_encrypted=encrypt_secret(settings.effective_secret_key, TOKEN),
        )
        session.add(target)
        await session.flush()
        session.add(MastodonStatus(target_id=target.id, post_id=post.id, status_id="42"))


async def test_post_figures_match_deliveries_and_interactions_sent(
    database: Database, settings: Settings, redis: Redis
):
    settings = fast_settings(loopback_settings(settings))
    urls = InstanceUrls(settings.base_url)
    relay_actor = urls.account("news").actor
    account = await create_account(database, "news")
    post = await create_post(database, settings, account)
    queue = await connect_queue(settings)
    async with (
        Fleet(hosts=3, followers=2, key_pool_size=3) as fleet,
        running_api(settings),
        running_worker(settings),
        mastodon_api(
            {"42": {"favourites_count": 5, "reblogs_count": 2, "replies_count": 1}}
        ) as api,
    ):
        # Two servers follow; the third only interacts.
        await follow_from_fleet(database, account, fleet, hosts=fleet.hosts[:2])
        create = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": urls.activity("create-1"),
            "type": "Create",
            "actor": relay_actor,
            "to": post.document["to"],
            "cc": post.document["cc"],
            "object": {k: v for k, v in post.document.items() if k != "@context"},
        }
        published = await publish(database, account, create, queue, post=post)
        assert await wait_until_finished(database, published.activity_row_id) == {"delivered": 2}

        likers = [fleet.actor(0, 0), fleet.actor(1, 0), fleet.actor(2, 1)]
        likes = [await fleet.like(actor, relay_actor, post.object_uri) for actor in likers]
        boost = await fleet.announce(fleet.actor(0, 1), relay_actor, post.object_uri)
        reply = await fleet.reply(fleet.actor(2, 0), relay_actor, post.object_uri)
        assert all(result.ok for result in [*likes, boost, reply])

        def live_interactions(expected: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                async with database.session() as session:
                    live = await session.scalar(
                        select(func.count()).where(Interaction.undone_at.is_(None))
                    )
                return live == expected

            return check

        # The Undo goes once its Like is stored: the inbox processes activities concurrently.
        await _eventually(live_interactions(5))
        assert (await fleet.undo(likers[2], relay_actor, likes[2].activity)).ok
        await _eventually(live_interactions(4))
        await _link_mastodon_status(database, settings, account, post, api)
        refresher = MastodonCountsRefresher(settings, database)
        assert await refresher.refresh() == 1
        await refresher.aclose()
    await queue.close()

    async with database.session() as session:
        stored = await session.get(Post, post.id)
        assert stored is not None
        figures = await post_analytics(session, stored)
        summary = await account_analytics(session, (await session.get(Account, account.id)), days=7)  # type: ignore[arg-type]
    assert figures.deliveries_accepted == 2
    assert figures.servers_reached == 2
    assert figures.followers_reached == 4
    assert (figures.likes, figures.boosts, figures.replies) == (2, 1, 1)
    assert (figures.mastodon.favourites, figures.mastodon.reblogs, figures.mastodon.replies) == (
        5,
        2,
        1,
    )
    assert figures.combined == {"likes": 7, "boosts": 3, "replies": 2}
    assert summary.totals["likes"] == 2
    assert summary.totals["combined_likes"] == 7
    assert summary.totals["new_followers"] == 4
    assert summary.followers == 4
    top = summary.top_servers[0]
    assert top["server"] == fleet.hosts[0].domain
    assert (top["likes"], top["boosts"], top["followers"]) == (1, 1, 2)
    assert {entry["server"] for entry in summary.followers_by_server} == {
        fleet.hosts[0].domain,
        fleet.hosts[1].domain,
    }


async def test_daily_series_covers_every_day_and_counts_new_followers(
    database: Database, settings: Settings
):
    account = await create_account(database, "news")
    now = datetime.now(UTC)
    async with Fleet(hosts=1, followers=3, key_pool_size=1) as fleet:
        await follow_from_fleet(database, account, fleet)
    async with database.session() as session:
        analytics = await account_analytics(session, account, days=5, now=now)
    assert [entry["day"] for entry in analytics.days] == [
        (now - timedelta(days=offset)).date().isoformat() for offset in range(4, -1, -1)
    ]
    assert analytics.days[-1]["new_followers"] == 3
    assert sum(entry["new_followers"] for entry in analytics.days) == 3


async def test_account_analytics_api_answers_json_and_csv(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    await create_post(database, settings, account)
    as_json = await client.get("/api/admin/accounts/news/analytics?days=3", headers=admin_headers)
    assert as_json.status_code == 200
    assert as_json.json()["totals"]["posts"] == 1
    as_csv = await client.get(
        "/api/admin/accounts/news/analytics?days=3&format=csv", headers=admin_headers
    )
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0][0] == "day" and len(rows) == 4
    posts = await client.get(
        "/api/admin/accounts/news/analytics/posts?format=csv", headers=admin_headers
    )
    assert posts.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(posts.text)))) == 2


async def test_post_analytics_of_an_unknown_post_is_a_404_problem(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    response = await client.get("/api/admin/posts/424242/analytics", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_csv_export_keeps_a_formula_like_title_as_text(
    database: Database, settings: Settings
):
    account = await create_account(database, "news")
    post = await create_post(database, settings, account)
    post.document = {**post.document, "name": '=HYPERLINK("http://evil")'}
    async with database.session() as session:
        item = await post_analytics(session, post)
    rows = list(csv.reader(io.StringIO(posts_csv([item]))))
    assert rows[1][2] == '\'=HYPERLINK("http://evil")'
