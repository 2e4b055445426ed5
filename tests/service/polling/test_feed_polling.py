"""Polling a CMS's RSS/Atom feed: new entries publish once, edited entries publish an Update,
unchanged feeds cost a 304, and every fetch stays within the relay's limits."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Activity, FeedSubscription, Post
from service.polling.feeds import FeedFetcher, FeedFetchError, FeedPoller
from service.runtime.embedded_redis import free_port
from service.runtime.settings import Settings
from tests.federation_peers import create_account

FEED_HOST = "127.0.0.4"


@dataclass
class FeedServer:
    """A CMS publishing an RSS feed, honouring If-None-Match like a real web server."""

    entries: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    not_modified: int = 0
    padding: int = 0
    url: str = ""

    def body(self) -> bytes:
        items = "".join(
            f"<item><title>{e['title']}</title><link>{e['link']}</link>"
            f'<guid isPermaLink="false">{e["guid"]}</guid>'
            f"<pubDate>{e['date']}</pubDate><description>{e['text']}</description></item>"
            for e in reversed(self.entries)
        )
        filler = "<!--" + "x" * self.padding + "-->" if self.padding else ""
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>'
            f"<link>https://blog.example/</link><description>d</description>{items}"
            f"</channel></rss>{filler}"
        ).encode()

    def add(self, guid: str, title: str, text: str, when: datetime) -> None:
        self.entries.append(
            {
                "guid": guid,
                "title": title,
                "link": f"https://blog.example/{guid}",
                "text": text,
                "date": format_datetime(when, usegmt=True),
            }
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = self.body()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": etag})


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/feed.xml", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port(FEED_HOST)
    await web.TCPSite(runner, FEED_HOST, port).start()
    server.url = f"http://{FEED_HOST}:{port}/feed.xml"
    yield server
    await runner.cleanup()


@contextlib.asynccontextmanager
async def poller_for(settings: Settings, database: Database) -> AsyncIterator[FeedPoller]:
    poller = FeedPoller(settings, database, InstanceUrls(settings.base_url), None)
    try:
        yield poller
    finally:
        await poller.aclose()


async def _subscribe(database: Database, url: str, accounts: list[str]) -> int:
    async with database.transaction() as session:
        subscription = FeedSubscription(url=url, accounts=accounts, interval_seconds=60)
        session.add(subscription)
        await session.flush()
        return subscription.id


async def _activities(database: Database) -> list[tuple[str, str]]:
    async with database.session() as session:
        rows = await session.execute(
            select(Activity.activity_type, Post.source_id)
            .join(Post, Post.id == Activity.post_id)
            .order_by(Activity.id)
        )
        return [(kind, source_id) for kind, source_id in rows]


START = datetime(2024, 6, 1, 9, tzinfo=UTC)


async def test_first_poll_only_records_what_the_feed_already_holds(
    database: Database, settings: Settings, feed_server: FeedServer
):
    await create_account(database, "news")
    feed_server.add("old-1", "Old one", "<p>old</p>", START)
    subscription_id = await _subscribe(database, feed_server.url, ["news"])
    async with poller_for(settings, database) as poller:
        result = await poller.poll(subscription_id)
    assert (result.status, result.baseline, result.new) == (200, 1, [])
    assert await _activities(database) == []


async def test_a_new_entry_is_published_once(
    database: Database, settings: Settings, feed_server: FeedServer
):
    await create_account(database, "news")
    feed_server.add("old-1", "Old one", "<p>old</p>", START)
    subscription_id = await _subscribe(database, feed_server.url, ["news"])
    async with poller_for(settings, database) as poller:
        await poller.poll(subscription_id)
        feed_server.add(
            "post-2", "Launch day", "<p>We launched &amp; more</p>", START + timedelta(days=1)
        )
        first = await poller.poll(subscription_id)
        again = await poller.poll(subscription_id)
    assert first.new == ["post-2"]
    assert again.status == 304 and again.new == [] and again.changed == []
    assert feed_server.not_modified == 1
    assert await _activities(database) == [("Create", "post-2")]
    async with database.session() as session:
        post = (await session.execute(select(Post))).scalar_one()
    assert post.source == "feed"
    assert post.canonical_url == "https://blog.example/post-2"
    assert "Launch day" in post.document["content"]


async def test_an_edited_entry_is_published_as_an_update(
    database: Database, settings: Settings, feed_server: FeedServer
):
    await create_account(database, "news")
    subscription_id = await _subscribe(database, feed_server.url, ["news"])
    async with poller_for(settings, database) as poller:
        await poller.poll(subscription_id)
        feed_server.add("post-3", "Release notes", "<p>v1</p>", START)
        await poller.poll(subscription_id)
        feed_server.entries[-1]["title"] = "Release notes, corrected"
        edited = await poller.poll(subscription_id)
        unchanged = await poller.poll(subscription_id)
    assert edited.changed == ["post-3"] and edited.new == []
    assert unchanged.changed == []
    assert await _activities(database) == [("Create", "post-3"), ("Update", "post-3")]
    async with database.session() as session:
        post = (await session.execute(select(Post))).scalar_one()
    assert post.edited_at is not None
    assert "corrected" in post.document["content"]


async def test_a_feed_over_one_megabyte_is_refused_and_recorded(
    database: Database, settings: Settings, feed_server: FeedServer
):
    await create_account(database, "news")
    feed_server.padding = 1_100_000
    subscription_id = await _subscribe(database, feed_server.url, ["news"])
    async with poller_for(settings, database) as poller:
        result = await poller.poll(subscription_id)
    assert result.error is not None and "bytes" in result.error
    async with database.session() as session:
        subscription = await session.get(FeedSubscription, subscription_id)
    assert subscription is not None
    assert subscription.last_error and subscription.next_poll_at is not None
    assert subscription.last_polled_at is None


async def test_only_due_subscriptions_are_polled(
    database: Database, settings: Settings, feed_server: FeedServer
):
    await create_account(database, "news")
    due = await _subscribe(database, feed_server.url, ["news"])
    async with database.transaction() as session:
        later = FeedSubscription(
            url=feed_server.url + "?other",
            accounts=["news"],
            next_poll_at=datetime.now(UTC) + timedelta(hours=1),
        )
        session.add(later)
    async with poller_for(settings, database) as poller:
        results = await poller.poll_due()
    assert [result.subscription_id for result in results] == [due]


async def test_private_addresses_are_refused_outside_test_mode(settings: Settings):
    fetcher = FeedFetcher(settings.model_copy(update={"test_mode": False}))
    try:
        with pytest.raises(FeedFetchError):
            await fetcher.fetch("https://127.0.0.1/feed.xml")
        with pytest.raises(FeedFetchError):
            await fetcher.fetch("http://blog.example/feed.xml")
    finally:
        await fetcher.aclose()


async def test_admin_api_subscribes_polls_and_removes_a_feed(
    client: httpx.AsyncClient,
    database: Database,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
):
    await create_account(database, "news")
    feed_server.add("a", "A", "<p>a</p>", START)
    created = await client.post(
        "/api/admin/feeds",
        json={"url": feed_server.url, "accounts": ["news"]},
        headers=admin_headers,
    )
    assert created.status_code == 201
    feed_id = created.json()["id"]
    duplicate = await client.post(
        "/api/admin/feeds", json={"url": feed_server.url}, headers=admin_headers
    )
    assert duplicate.status_code == 409
    polled = await client.post(f"/api/admin/feeds/{feed_id}/poll", headers=admin_headers)
    assert polled.json()["baseline"] == 1
    listed = await client.get("/api/admin/feeds", headers=admin_headers)
    assert [item["id"] for item in listed.json()] == [feed_id]
    removed = await client.delete(f"/api/admin/feeds/{feed_id}", headers=admin_headers)
    assert removed.status_code == 204
    assert (
        await client.get(f"/api/admin/feeds/{feed_id}", headers=admin_headers)
    ).status_code == 404


async def test_subscribing_for_an_unknown_account_is_refused(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    response = await client.post(
        "/api/admin/feeds",
        json={"url": "https://blog.example/feed.xml", "accounts": ["ghost"]},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/unknown-account")
