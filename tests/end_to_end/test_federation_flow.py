"""End to end over real HTTP: fake Mastodon servers on loopback follow a relay account,
get its signed Accept, read its outbox and send likes, boosts, replies, undos, deletes and
moves, all signed both ways and processed by a real worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bench.harness.fleet import Fleet
from bench.harness.relay_harness import loopback_settings, running_api, running_worker
from service.db.engine import Database
from service.db.models import Account, Follower, InboxActivity, Interaction, Post, RemoteActor
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post
from tests.service.web.routes.test_collections import add_activity

pytestmark = pytest.mark.slow

AP = {"Accept": "application/activity+json"}


@dataclass
class LiveRelay:
    settings: Settings
    database: Database
    fleet: Fleet
    account: Account
    post: Post

    @property
    def actor_url(self) -> str:
        return f"{self.settings.base_url}/users/{self.account.handle}"

    async def count(self, model: Any, *conditions: Any) -> int:
        async with self.database.session() as session:
            query = select(func.count()).select_from(model).where(*conditions)
            return int(await session.scalar(query) or 0)

    async def eventually(
        self,
        check: Callable[[], Awaitable[bool]],
        what: str,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                async with self.database.session() as session:
                    rows = (await session.execute(select(InboxActivity))).scalars().all()
                states = [(row.activity_type, row.state, row.error) for row in rows]
                raise AssertionError(f"timed out waiting for {what}; inbox: {states}")
            await asyncio.sleep(0.05)

    async def interactions(self, kind: str, *, active: bool = True) -> int:
        conditions = [Interaction.post_id == self.post.id, Interaction.kind == kind]
        if active:
            conditions.append(Interaction.undone_at.is_(None))
        return await self.count(Interaction, *conditions)


@asynccontextmanager
async def live_relay(settings: Settings, database: Database) -> AsyncIterator[LiveRelay]:
    live = loopback_settings(settings)
    account = await create_account(database)
    post = await create_post(database, live, account)
    await add_activity(database, live, account, post=post)
    async with (
        Fleet(hosts=2, followers=2, key_pool_size=4) as fleet,
        running_api(live),
        running_worker(live),
    ):
        yield LiveRelay(live, database, fleet, account, post)


async def follow_everyone(relay: LiveRelay) -> None:
    report = await relay.fleet.follow(relay.actor_url)
    assert report.sent == len(relay.fleet.followers) and not report.failed
    assert await relay.fleet.wait_for_accepts(timeout=30) == len(relay.fleet.followers)


async def test_fleet_follows_and_receives_signed_accepts(
    settings: Settings, database: Database
) -> None:
    async with live_relay(settings, database) as relay:
        await follow_everyone(relay)
        assert relay.fleet.signature_failures == 0
        assert await relay.count(Follower, Follower.state == "accepted") == 4
        accepts = [
            arrival
            for arrival in relay.fleet.arrivals
            if arrival.activity is not None and arrival.activity.get("type") == "Accept"
        ]
        assert len(accepts) == 4 and all(arrival.verified for arrival in accepts)
        assert not relay.fleet.duplicates()


async def test_followers_see_the_posts_in_the_outbox_over_http(
    settings: Settings, database: Database
) -> None:
    async with live_relay(settings, database) as relay:
        await follow_everyone(relay)
        async with httpx.AsyncClient() as http:
            head = (await http.get(f"{relay.actor_url}/outbox", headers=AP)).json()
            page = (await http.get(head["first"], headers=AP)).json()
            note = (await http.get(relay.post.object_uri, headers=AP)).json()
            followers = (await http.get(f"{relay.actor_url}/followers", headers=AP)).json()
        assert head["totalItems"] == 1
        assert page["orderedItems"][0]["object"] == relay.post.object_uri
        assert note == relay.post.document
        assert followers["totalItems"] == 4


async def test_likes_boosts_and_replies_are_counted_and_undone(
    settings: Settings, database: Database
) -> None:
    async with live_relay(settings, database) as relay:
        await follow_everyone(relay)
        fleet, post = relay.fleet, relay.post
        liker, booster, replier = fleet.actor(0, 0), fleet.actor(0, 1), fleet.actor(1, 0)
        like = await fleet.like(liker, relay.actor_url, post.object_uri)
        boost = await fleet.announce(booster, relay.actor_url, post.object_uri)
        reply = await fleet.reply(replier, relay.actor_url, post.object_uri, "<p>Great!</p>")
        assert (like.status, boost.status, reply.status) == (202, 202, 202)

        async def all_counted() -> bool:
            return (
                await relay.interactions("like"),
                await relay.interactions("boost"),
                await relay.interactions("reply"),
            ) == (1, 1, 1)

        await relay.eventually(all_counted, "like, boost and reply")
        await fleet.undo(liker, relay.actor_url, like.activity)
        await fleet.undo(booster, relay.actor_url, boost.activity)
        await fleet.delete(replier, relay.actor_url, reply.activity["object"]["id"])

        async def all_undone() -> bool:
            return (
                await relay.interactions("like"),
                await relay.interactions("boost"),
                await relay.interactions("reply"),
            ) == (0, 0, 0)

        await relay.eventually(all_undone, "undo of like and boost, delete of reply")
        assert await relay.interactions("like", active=False) == 1


async def test_unfollow_removes_the_follower(settings: Settings, database: Database) -> None:
    async with live_relay(settings, database) as relay:
        await follow_everyone(relay)
        leaver = relay.fleet.actor(1, 1)
        assert (await relay.fleet.unfollow(leaver, relay.actor_url)).status == 202

        async def gone() -> bool:
            return await relay.count(Follower, Follower.actor_uri == leaver.id) == 0

        await relay.eventually(gone, "unfollow")
        assert await relay.count(Follower) == 3


async def test_deleted_account_is_erased(settings: Settings, database: Database) -> None:
    async with live_relay(settings, database) as relay:
        await follow_everyone(relay)
        actor = relay.fleet.actor(0, 0)
        await relay.fleet.like(actor, relay.actor_url, relay.post.object_uri)

        async def liked() -> bool:
            return await relay.interactions("like") == 1

        await relay.eventually(liked, "like")
        assert (await relay.fleet.delete_actor(actor, relay.actor_url)).status == 202

        async def erased() -> bool:
            return (
                await relay.count(Follower, Follower.actor_uri == actor.id)
                + await relay.count(Interaction, Interaction.actor_uri == actor.id)
                + await relay.count(RemoteActor, RemoteActor.uri == actor.id)
            ) == 0

        await relay.eventually(erased, "erasure of the deleted actor")
        assert await relay.count(Follower) == 3


async def test_moved_account_is_dropped_and_its_new_account_can_follow(
    settings: Settings, database: Database
) -> None:
    async with live_relay(settings, database) as relay:
        fleet = relay.fleet
        old, new = fleet.actor(0, 0), fleet.actor(1, 1)
        await fleet.follow(relay.actor_url, actors=[old])
        assert await fleet.wait_for_accepts(timeout=30) == 1
        assert (await fleet.move(old, relay.actor_url, new)).status == 202

        async def old_dropped() -> bool:
            return await relay.count(Follower, Follower.actor_uri == old.id) == 0

        await relay.eventually(old_dropped, "move")
        await fleet.follow(relay.actor_url, actors=[new])
        assert await fleet.wait_for_accepts(timeout=30) == 2
        followers = await relay.count(Follower, Follower.actor_uri == new.id)
        assert followers == 1
