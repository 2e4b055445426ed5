"""Polling the forge for stars and missed releases, against an aiohttp server playing Forgejo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from bench.harness.relay_harness import running_worker
from bench.harness.webhook_senders import (
    create_account,
    payload_json,
    posts,
    process_received,
    send_forgejo,
    with_webhook_secrets,
)
from federation.activitypub.urls import InstanceUrls
from service.db.models import ForgeRepositoryState
from service.polling.forge_api import ForgeClient
from service.polling.forge_repositories import poll_repository
from service.runtime.settings import Settings
from workers import forge_polling_tasks

REPOSITORY = "acme/widget"
TOKEN = "forge-token-123"
STARS = {"rules": [{"sources": ["forgejo"], "events": ["star", "star_milestone", "release"]}]}


class FakeForge:
    """The part of the Forgejo API the relay polls, with the state a test sets."""

    def __init__(self) -> None:
        self.stargazers: list[str] = []
        self.releases: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.base_url = ""

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get("/api/v1/repos/{owner}/{name}/stargazers", self.list_stars)
        application.router.add_get("/api/v1/repos/{owner}/{name}/releases", self.list_releases)
        return application

    async def list_stars(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        page = int(request.query.get("page", "1"))
        limit = int(request.query.get("limit", "30"))
        chunk = self.stargazers[(page - 1) * limit : page * limit]
        return web.json_response([{"id": i, "login": login} for i, login in enumerate(chunk)])

    async def list_releases(self, request: web.Request) -> web.Response:
        return web.json_response(self.releases)

    def release(self, release_id: int, tag: str, published_at: datetime) -> dict[str, Any]:
        release = dict(payload_json("forgejo_release_published.json")["release"])
        release.update(
            id=release_id,
            tag_name=tag,
            name=tag,
            html_url=f"{self.base_url}/{REPOSITORY}/releases/tag/{tag}",
            published_at=published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            created_at=published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return release


@contextlib.asynccontextmanager
async def serving(forge: FakeForge) -> AsyncIterator[str]:
    runner = web.AppRunner(forge.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    forge.base_url = f"http://127.0.0.1:{port}"
    try:
        yield forge.base_url
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


@pytest.fixture
async def forge() -> AsyncIterator[FakeForge]:
    fake = FakeForge()
    async with serving(fake):
        yield fake


@pytest.fixture
async def poll(database, settings, forge):
    async with httpx.AsyncClient() as http:
        client = ForgeClient(http, forge.base_url, TOKEN)

        async def run():
            return await poll_repository(
                database, None, InstanceUrls(settings.base_url), client, REPOSITORY, [10, 100]
            )

        yield run


async def test_first_poll_only_records_a_baseline(database, forge, poll):
    await create_account(database, "stars", routing=STARS)
    forge.stargazers = ["ann", "ben"]
    report = await poll()
    assert report.baseline
    assert await posts(database) == []


async def test_new_star_after_the_baseline_is_published(database, forge, poll):
    await create_account(database, "stars", followers=1, routing=STARS)
    forge.stargazers = ["ann"]
    await poll()
    forge.stargazers = ["ann", "ben"]
    report = await poll()
    assert report.new_stars == 1
    [post] = await posts(database)
    assert post.source_id == "acme/widget#star:ben"
    assert post.document["url"] == f"{forge.base_url}/acme/widget"


async def test_crossing_a_milestone_publishes_it(database, forge, poll):
    await create_account(database, "stars", routing=STARS)
    forge.stargazers = [f"user{i}" for i in range(9)]
    await poll()
    forge.stargazers.append("tenth")
    report = await poll()
    assert report.milestone == 10
    assert sorted(post.source_id for post in await posts(database)) == [
        "acme/widget#star:tenth",
        "acme/widget#stars:10",
    ]


async def test_unstar_and_star_again_publishes_nothing_twice(database, forge, poll):
    await create_account(database, "stars", routing=STARS)
    forge.stargazers = ["ann"]
    await poll()
    forge.stargazers = ["ann", "ben"]
    await poll()
    forge.stargazers = ["ann"]
    await poll()
    forge.stargazers = ["ann", "ben"]
    await poll()
    assert [post.source_id for post in await posts(database)] == ["acme/widget#star:ben"]


async def test_stargazers_are_read_across_pages(database, forge, poll):
    forge.stargazers = [f"user{i}" for i in range(120)]
    await poll()
    async with database.session() as session:
        state = await session.get(ForgeRepositoryState, REPOSITORY)
    assert state.star_count == 120


async def test_polls_send_the_forge_token(forge, poll):
    await poll()
    assert forge.authorizations == [f"token {TOKEN}"]


async def test_release_missed_by_the_webhook_is_published(database, forge, poll):
    await create_account(database, "stars", routing=STARS)
    await poll()
    forge.releases = [forge.release(77, "v2.0.0", datetime.now(UTC) + timedelta(seconds=1))]
    await poll()
    await poll()
    [post] = await posts(database)
    assert post.source_id == "acme/widget#release:77"


async def test_releases_from_before_the_first_poll_are_history(database, forge, poll):
    await create_account(database, "stars", routing=STARS)
    forge.releases = [forge.release(5, "v0.1.0", datetime.now(UTC) - timedelta(days=30))]
    await poll()
    await poll()
    assert await posts(database) == []


async def test_release_already_delivered_by_webhook_is_not_published_again(
    client, database, settings, forge, poll
):
    await create_account(database, "stars", routing=STARS)
    await poll()
    release = forge.release(42, "v1.4.0", datetime.now(UTC) + timedelta(seconds=1))
    forge.releases = [release]
    body = payload_json("forgejo_release_published.json")
    body["release"] = release
    await send_forgejo(client, "release", json.dumps(body).encode())
    await process_received(database, settings)
    await poll()
    assert [post.source_id for post in await posts(database)] == ["acme/widget#release:42"]


async def test_worker_polls_configured_repositories(database, settings, forge, redis):
    relay = settings.model_copy(
        update={"forge_base_url": forge.base_url, "forge_repositories": REPOSITORY}
    )
    forge.stargazers = ["ann"]
    # arq keeps cron state on the module-level CronJob objects; a fresh process starts clean,
    # so clear what an earlier in-process worker left behind.
    for job in forge_polling_tasks.CRON_JOBS:
        job.next_run = None
    async with running_worker(relay):
        deadline = time.monotonic() + 10
        state = None
        while state is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with database.session() as session:
                state = (await session.execute(select(ForgeRepositoryState))).scalar_one_or_none()
    assert state is not None and state.stargazers == ["ann"]
