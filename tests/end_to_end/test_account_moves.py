"""Account moves end to end, against fake Mastodon servers that follow Mastodon's rules.

Moving in: the old account lives on a fleet server; once the relay account aliases it, the
old server's move (refused by Mastodon unless the new account lists the old one in
`alsoKnownAs`) makes each follower's server follow the relay account.

Moving out: the relay account's followers are fleet actors; their servers accept the relay's
Move only if the target lists the relay account in `alsoKnownAs`, and then follow the target
and unfollow the relay account.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import func, select

from bench.harness.delivery_scenarios import fast_settings
from bench.harness.fleet import Fleet, FleetActor
from bench.harness.relay_harness import loopback_settings, running_api, running_worker, settings_env
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery, Follower
from service.runtime.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.federation_peers import create_account

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AS_JSON = {"Accept": "application/activity+json"}


class MastodonFleet(Fleet):
    """Fleet servers that also publish follower counts and apply Mastodon's move rules."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.followers_of: dict[str, list[FleetActor]] = {}
        self.local_follows: set[tuple[str, str]] = set()

    async def _empty(self, request: web.Request) -> web.StreamResponse:
        collection = f"http://{request.host}{request.path}"
        actor_id = collection.rsplit("/", 1)[0]
        if request.path.endswith("/followers") and actor_id in self.followers_of:
            return web.json_response(
                {
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": collection,
                    "type": "OrderedCollection",
                    "totalItems": len(self.followers_of[actor_id]),
                },
                content_type="application/activity+json",
            )
        return await super()._empty(request)

    def add_account(self, host_index: int, handle: str) -> FleetActor:
        host = self.hosts[host_index]
        actor = FleetActor(host, handle, self.followers[0].key)
        host.actors[handle] = actor
        return actor

    async def fetch(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(url, headers=AS_JSON)
            response.raise_for_status()
            return dict(response.json())

    async def move_account(self, origin: FleetActor, target_actor: str) -> None:
        """Preferences → Account → Move to a different account, as Mastodon does it."""
        target = await self.fetch(target_actor)
        if origin.id not in target.get("alsoKnownAs", []):
            raise PermissionError("the new account must list the old one as an alias")
        origin.moved_to = target_actor
        # Each follower's server re-checks the alias, then follows the new account.
        followers = self.followers_of[origin.id]
        await self.follow(target_actor, actors=followers)

    async def receive_moves(self, move_id: str, count: int) -> None:
        """What each server does on a verified Move from an account its users follow."""
        for arrival in await self.wait_for(move_id, count=count, timeout=20):
            activity = arrival.activity or {}
            origin, target_id = activity["actor"], activity["target"]
            if activity["object"] != origin:
                continue
            target = await self.fetch(target_id)
            if origin not in target.get("alsoKnownAs", []):
                continue
            for actor in self.followers:
                state = self.follow_of(actor)
                if actor.host.domain != arrival.host or state is None or state.target != origin:
                    continue
                self.local_follows.add((actor.id, target_id))
                assert (await self.unfollow(actor, origin)).ok


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


async def _nothing_in_flight(database: Database) -> bool:
    async with database.session() as session:
        busy = await session.scalar(
            select(func.count()).where(Delivery.state.in_(("pending", "in_flight", "retrying")))
        )
    return not busy


async def _followers(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Follower)) or 0)


@pytest.fixture
async def relay(
    database: Database, settings: Settings, redis: Redis
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    settings = fast_settings(loopback_settings(settings))
    await create_account(database, "news")
    async with running_api(settings) as base, running_worker(settings):
        async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=30) as api:
            yield settings, api
        # Stopping the worker mid-job makes arq's close raise; let the deliveries finish.
        with contextlib.suppress(TimeoutError):
            await _eventually(lambda: _nothing_in_flight(database), within=15)


async def test_move_in_brings_the_old_accounts_followers(
    relay: tuple[Settings, httpx.AsyncClient], database: Database
):
    settings, api = relay
    relay_actor = InstanceUrls(settings.base_url).account("news").actor
    async with MastodonFleet(hosts=2, followers=2, key_pool_size=2) as fleet:
        old = fleet.add_account(0, "brand")
        fleet.followers_of[old.id] = list(fleet.followers)
        with pytest.raises(PermissionError):
            await fleet.move_account(old, relay_actor)

        aliased = await api.post(
            "/api/admin/accounts/news/aliases", json={"from": f"acct:{old.acct}"}
        )
        assert aliased.status_code == 201
        body = aliased.json()
        assert body["from"] == old.id and body["followers_expected"] == 4
        assert any("Move to a different account" in step for step in body["next_steps"])
        actor = (await api.get("/users/news", headers=AS_JSON)).json()
        assert actor["alsoKnownAs"] == [old.id]

        await fleet.move_account(old, relay_actor)
        assert await fleet.wait_for_accepts(timeout=20) == 4
        status = (await api.get("/api/admin/accounts/news/migration")).json()
    incoming = status["incoming"][0]
    assert incoming["followers_arrived"] == 4
    assert incoming["followers_expected"] == 4
    assert incoming["progress"] == 1.0
    assert await _followers(database) == 4


async def test_move_out_is_refused_until_the_target_aliases_the_account(
    relay: tuple[Settings, httpx.AsyncClient], database: Database
):
    settings, api = relay
    async with MastodonFleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        target = fleet.add_account(0, "newhome")
        response = await api.post("/api/admin/accounts/news/move", json={"to": target.acct})
        actor = (await api.get("/users/news", headers=AS_JSON)).json()
    assert response.status_code == 409
    assert response.json()["type"].endswith("/alias-missing")
    assert "Create an account alias" in response.json()["detail"]
    assert "movedTo" not in actor


async def test_move_out_sends_move_and_followers_follow_the_new_account(
    relay: tuple[Settings, httpx.AsyncClient], database: Database
):
    settings, api = relay
    relay_actor = InstanceUrls(settings.base_url).account("news").actor
    async with MastodonFleet(hosts=2, followers=2, key_pool_size=2) as fleet:
        await fleet.follow(relay_actor)
        assert await fleet.wait_for_accepts(timeout=20) == 4
        target = fleet.add_account(0, "newhome")
        target.also_known_as.append(relay_actor)

        moved = await api.post("/api/admin/accounts/news/move", json={"to": target.acct})
        assert moved.status_code == 202
        move_id = moved.json()["move_activity"]
        assert moved.json()["deliveries"] == 2
        actor = (await api.get("/users/news", headers=AS_JSON)).json()
        assert actor["movedTo"] == target.id

        await fleet.receive_moves(move_id, count=2)
        await _eventually(lambda: _is_zero(database))
        status = (await api.get("/api/admin/accounts/news/migration")).json()
        again = await api.post("/api/admin/accounts/news/move", json={"to": target.acct})
    assert fleet.local_follows == {(follower.id, target.id) for follower in fleet.followers}
    assert all(a.verified for a in fleet.deliveries_for(move_id))
    assert status["moved_to"] == target.id
    assert status["outgoing"][0]["followers_at_move"] == 4
    assert status["outgoing"][0]["followers_remaining"] == 0
    assert again.status_code == 429
    assert again.json()["type"].endswith("/move-cooldown")


async def _is_zero(database: Database) -> bool:
    return await _followers(database) == 0


async def test_cli_alias_prints_the_steps_to_trigger_the_move(
    database: Database, settings: Settings
):
    await create_account(database, "news")
    async with MastodonFleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        old = fleet.add_account(0, "brand")
        fleet.followers_of[old.id] = list(fleet.followers)
        command = [sys.executable, "-m", "service.cli", "accounts", "alias", "news",
                   "--from", f"acct:{old.acct}"]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command,
            env=settings_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert f"@news is now also known as {old.id}" in text
    assert "the old account has 1 followers" in text
    assert "Move to a different account" in text


async def test_cli_move_refuses_without_the_alias(database: Database, settings: Settings):
    await create_account(database, "news")
    async with MastodonFleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        target = fleet.add_account(0, "newhome")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "accounts", "move", "news", "--to", target.acct,
            env=settings_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "does not list" in err.decode() and "alsoKnownAs" in err.decode()


async def test_alias_of_an_unknown_account_is_a_422_problem(
    relay: tuple[Settings, httpx.AsyncClient],
):
    _, api = relay
    async with MastodonFleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        response = await api.post(
            "/api/admin/accounts/news/aliases", json={"from": f"nobody@{fleet.hosts[0].domain}"}
        )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/unresolvable-account")
