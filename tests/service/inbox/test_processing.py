"""Processing of each kind of received activity, on SQLite and PostgreSQL.

Activities come in through the real inbox (signed by fleet actors on loopback) and are
then processed by the worker's processor, which fetches remote documents over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from bench.harness.fleet import Fleet, FleetActor
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import (
    Account,
    Activity,
    Delivery,
    Follower,
    FollowerSnapshot,
    Following,
    InboxActivity,
    Interaction,
    Post,
    RemoteActor,
)
from service.inbox.processing import InboxProcessor
from service.remote.documents import RemoteDocumentFetcher
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings
from tests.federation_peers import (
    activity_from,
    create_account,
    create_post,
    post_signed,
)
from workers.inbox_tasks import enqueue_received, snapshot_followers, waiting_received

pytest_plugins = ("tests.fleet_fixture",)


@pytest.fixture
def fetched() -> list[str]:
    """Every URL the processor fetched, in order."""
    return []


@pytest.fixture
async def processor(
    settings: Settings, database: Database, fetched: list[str]
) -> AsyncIterator[InboxProcessor]:
    fetcher = RemoteDocumentFetcher.from_settings(settings)

    async def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return (await fetcher.fetch(url)).document

    yield InboxProcessor(database, InstanceUrls(settings.base_url), fetch)
    await fetcher.aclose()


@pytest.fixture
async def account(database: Database) -> Account:
    return await create_account(database)


@pytest.fixture
async def post(database: Database, settings: Settings, account: Account) -> Post:
    return await create_post(database, settings, account)


class Relay:
    """Sends activities to the relay's inbox and processes them, as the worker would."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        database: Database,
        processor: InboxProcessor,
    ) -> None:
        self.client = client
        self.settings = settings
        self.database = database
        self.processor = processor
        self.actor_url = f"{settings.base_url}/users/news"

    async def receive(self, actor: FleetActor, activity: dict[str, Any]) -> str | None:
        response = await post_signed(self.client, self.settings, actor, activity)
        assert response.status_code == 202, response.text
        row_id = await self.row_id(activity["id"])
        return await self.processor.process(row_id)

    async def row_id(self, activity_id: str) -> int:
        async with self.database.session() as session:
            return int(
                await session.scalar(
                    select(InboxActivity.id).where(InboxActivity.activity_uri == activity_id)
                )
            )

    async def follow(self, actor: FleetActor) -> dict[str, Any]:
        follow = activity_from(actor, "Follow", self.actor_url)
        assert await self.receive(actor, follow) == "processed"
        return follow

    async def count(self, model: Any, *conditions: Any) -> int:
        async with self.database.session() as session:
            query = select(func.count()).select_from(model).where(*conditions)
            return int(await session.scalar(query) or 0)

    async def rows(self, model: Any, *conditions: Any) -> list[Any]:
        async with self.database.session() as session:
            return list((await session.execute(select(model).where(*conditions))).scalars())

    async def state_of(self, activity_id: str) -> tuple[str, str | None]:
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(InboxActivity).where(InboxActivity.activity_uri == activity_id)
                )
            ).scalar_one()
            return row.state, row.error


@pytest.fixture
def relay(
    client: httpx.AsyncClient, settings: Settings, database: Database, processor: InboxProcessor
) -> Relay:
    return Relay(client, settings, database, processor)


# -- Follow ---------------------------------------------------------------------------------


async def test_follow_records_the_follower_and_sends_accept(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    actor = fleet.actor(0, 0)
    follow = await relay.follow(actor)
    [follower] = await relay.rows(Follower)
    assert (follower.account_id, follower.actor_uri, follower.state) == (
        account.id,
        actor.id,
        "accepted",
    )
    assert (follower.inbox, follower.shared_inbox) == (actor.inbox, actor.shared_inbox)
    assert follower.host == actor.host.domain
    assert follower.follow_activity_id == follow["id"]
    [accept] = await relay.rows(Activity)
    assert accept.activity_type == "Accept" and accept.in_outbox is False
    assert accept.document["object"]["id"] == follow["id"]
    assert accept.document["actor"] == relay.actor_url
    [delivery] = await relay.rows(Delivery)
    assert delivery.inbox == actor.inbox and delivery.activity_id == accept.id
    [remote] = await relay.rows(RemoteActor)
    assert remote.inbox == actor.inbox and remote.shared_inbox == actor.shared_inbox


async def test_follow_is_answered_from_the_document_fetched_to_verify_it(
    relay: Relay, fleet: Fleet, account: Account, fetched: list[str]
) -> None:
    await relay.follow(fleet.actor(0, 0))
    assert fetched == []
    [follower] = await relay.rows(Follower)
    assert follower.inbox == fleet.actor(0, 0).inbox


async def test_first_contact_stores_the_senders_inboxes_with_its_activity(
    relay: Relay, fleet: Fleet, account: Account, settings: Settings
) -> None:
    actor = fleet.actor(0, 0)
    follow = activity_from(actor, "Follow", relay.actor_url)
    response = await post_signed(relay.client, settings, actor, follow)
    assert response.status_code == 202
    [remote] = await relay.rows(RemoteActor)
    assert (remote.uri, remote.inbox, remote.shared_inbox) == (
        actor.id,
        actor.inbox,
        actor.shared_inbox,
    )
    assert remote.key_id == actor.key_id


async def test_follower_document_fetched_long_ago_is_fetched_again(
    relay: Relay, fleet: Fleet, account: Account, database: Database, fetched: list[str]
) -> None:
    actor = fleet.actor(0, 0)
    follow = activity_from(actor, "Follow", relay.actor_url)
    response = await post_signed(relay.client, relay.settings, actor, follow)
    assert response.status_code == 202
    async with database.transaction() as session:
        await session.execute(
            update(RemoteActor).values(fetched_at=datetime.now(UTC) - timedelta(hours=1))
        )
    assert await relay.processor.process(await relay.row_id(follow["id"])) == "processed"
    assert fetched == [actor.id]


async def test_follows_processed_together_wake_one_delivery_job(
    relay: Relay, fleet: Fleet, account: Account, redis: Redis, settings: Settings
) -> None:
    row_ids = []
    for index in range(3):
        actor = fleet.actor(0, index)
        follow = activity_from(actor, "Follow", relay.actor_url)
        response = await post_signed(relay.client, settings, actor, follow)
        assert response.status_code == 202
        row_ids.append(await relay.row_id(follow["id"]))
    await redis.flushall()
    queue = await JobQueue.connect(settings.redis_url or "", settings.queue_name)
    try:
        states = await relay.processor.process_many(row_ids, queue)
    finally:
        await queue.close()
    assert states == ["processed"] * 3
    accepts = await relay.rows(Activity, Activity.activity_type == "Accept")
    first, last = min(a.id for a in accepts), max(a.id for a in accepts)
    [job] = [key async for key in redis.scan_iter(f"arq:job:{settings.queue_name}:fanout:*")]
    assert job.decode() == f"arq:job:{settings.queue_name}:fanout:{first}-{last}x3"


async def _received(
    relay: Relay, settings: Settings, sent: list[tuple[FleetActor, dict[str, Any]]]
) -> list[int]:
    row_ids = []
    for actor, activity in sent:
        response = await post_signed(relay.client, settings, actor, activity)
        assert response.status_code == 202, response.text
        row_ids.append(await relay.row_id(activity["id"]))
    return row_ids


async def test_follows_processed_together_are_each_accepted_at_their_own_inbox(
    relay: Relay, fleet: Fleet, account: Account, settings: Settings
) -> None:
    actors = [fleet.actor(0, 0), fleet.actor(0, 1), fleet.actor(1, 0)]
    follows = [activity_from(actor, "Follow", relay.actor_url) for actor in actors]
    row_ids = await _received(relay, settings, list(zip(actors, follows, strict=True)))

    assert await relay.processor.process_many(row_ids) == ["processed"] * 3

    accepts = await relay.rows(Activity, Activity.activity_type == "Accept")
    answered = {accept.document["object"]["id"]: accept for accept in accepts}
    assert set(answered) == {follow["id"] for follow in follows}
    for actor, follow in zip(actors, follows, strict=True):
        [delivery] = await relay.rows(Delivery, Delivery.activity_id == answered[follow["id"]].id)
        assert delivery.inbox == actor.inbox
    assert await relay.count(Follower, Follower.state == "accepted") == 3


async def test_follow_and_its_undo_processed_together_leave_no_follower(
    relay: Relay, fleet: Fleet, account: Account, settings: Settings
) -> None:
    actor, other = fleet.actor(0, 0), fleet.actor(0, 1)
    follow = activity_from(actor, "Follow", relay.actor_url)
    inner = {key: value for key, value in follow.items() if key != "@context"}
    sent = [
        (actor, follow),
        (other, activity_from(other, "Follow", relay.actor_url)),
        (actor, activity_from(actor, "Undo", inner)),
    ]
    row_ids = await _received(relay, settings, sent)

    assert await relay.processor.process_many(row_ids) == ["processed"] * 3

    assert [f.actor_uri for f in await relay.rows(Follower)] == [other.id]


async def test_repeated_follows_processed_together_keep_one_follower_answered_twice(
    relay: Relay, fleet: Fleet, account: Account, settings: Settings
) -> None:
    actor = fleet.actor(0, 0)
    first, second = (activity_from(actor, "Follow", relay.actor_url) for _ in range(2))
    row_ids = await _received(relay, settings, [(actor, first), (actor, second)])

    assert await relay.processor.process_many(row_ids) == ["processed"] * 2

    [follower] = await relay.rows(Follower)
    assert follower.follow_activity_id == second["id"]
    assert await relay.count(Activity, Activity.activity_type == "Accept") == 2


async def test_follows_of_an_open_and_a_closed_account_processed_together(
    relay: Relay, fleet: Fleet, account: Account, database: Database, settings: Settings
) -> None:
    await create_account(database, "closed", manually_approves_followers=True)
    open_fan, closed_fan = fleet.actor(0, 0), fleet.actor(0, 1)
    sent = [
        (open_fan, activity_from(open_fan, "Follow", relay.actor_url)),
        (closed_fan, activity_from(closed_fan, "Follow", f"{settings.base_url}/users/closed")),
    ]
    row_ids = await _received(relay, settings, sent)

    assert await relay.processor.process_many(row_ids) == ["processed"] * 2

    states = {f.actor_uri: f.state for f in await relay.rows(Follower)}
    assert states == {open_fan.id: "accepted", closed_fan.id: "pending"}
    assert await relay.count(Activity, Activity.activity_type == "Accept") == 1


async def test_follow_of_a_manually_approving_account_stays_pending(
    relay: Relay, fleet: Fleet, database: Database
) -> None:
    await create_account(database, "closed", manually_approves_followers=True)
    actor = fleet.actor(0, 0)
    follow = activity_from(actor, "Follow", f"{relay.settings.base_url}/users/closed")
    assert await relay.receive(actor, follow) == "processed"
    [follower] = await relay.rows(Follower)
    assert follower.state == "pending"
    assert await relay.count(Activity) == 0


async def test_repeated_follow_keeps_one_follower_and_is_accepted_again(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    actor = fleet.actor(0, 0)
    await relay.follow(actor)
    second = await relay.follow(actor)
    [follower] = await relay.rows(Follower)
    assert follower.follow_activity_id == second["id"]
    assert await relay.count(Activity, Activity.activity_type == "Accept") == 2


async def test_follow_of_an_unknown_account_is_ignored(relay: Relay, fleet: Fleet) -> None:
    actor = fleet.actor(0, 0)
    follow = activity_from(actor, "Follow", f"{relay.settings.base_url}/users/nobody")
    assert await relay.receive(actor, follow) == "ignored"
    assert await relay.count(Follower) == 0


async def test_undo_follow_removes_the_follower(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    actor = fleet.actor(0, 0)
    follow = await relay.follow(actor)
    inner = {key: value for key, value in follow.items() if key != "@context"}
    assert await relay.receive(actor, activity_from(actor, "Undo", inner)) == "processed"
    assert await relay.count(Follower) == 0


async def test_block_drops_the_follower(relay: Relay, fleet: Fleet, account: Account) -> None:
    actor = fleet.actor(0, 0)
    await relay.follow(actor)
    assert await relay.receive(actor, activity_from(actor, "Block", relay.actor_url)) == "processed"
    assert await relay.count(Follower) == 0


# -- likes, boosts, replies -----------------------------------------------------------------


async def test_like_of_our_post_is_counted(relay: Relay, fleet: Fleet, post: Post) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", post.object_uri)
    assert await relay.receive(actor, like) == "processed"
    [interaction] = await relay.rows(Interaction)
    assert (interaction.kind, interaction.actor_uri, interaction.post_id) == (
        "like",
        actor.id,
        post.id,
    )
    assert interaction.activity_uri == like["id"] and interaction.undone_at is None


async def test_second_like_by_the_same_actor_is_not_counted_twice(
    relay: Relay, fleet: Fleet, post: Post
) -> None:
    actor = fleet.actor(0, 0)
    assert await relay.receive(actor, activity_from(actor, "Like", post.object_uri)) == "processed"
    assert await relay.receive(actor, activity_from(actor, "Like", post.object_uri)) == "ignored"
    assert await relay.count(Interaction) == 1


async def test_like_of_an_unknown_object_is_ignored(relay: Relay, fleet: Fleet) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", f"{relay.settings.base_url}/objects/unknown")
    assert await relay.receive(actor, like) == "ignored"
    assert await relay.count(Interaction) == 0


async def test_like_of_a_deleted_post_is_ignored(
    relay: Relay, fleet: Fleet, database: Database, settings: Settings, account: Account
) -> None:
    deleted = await create_post(database, settings, account, state="deleted")
    actor = fleet.actor(0, 0)
    assert await relay.receive(actor, activity_from(actor, "Like", deleted.object_uri)) == "ignored"


async def test_undo_like_marks_the_like_undone(relay: Relay, fleet: Fleet, post: Post) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", post.object_uri)
    await relay.receive(actor, like)
    inner = {key: value for key, value in like.items() if key != "@context"}
    assert await relay.receive(actor, activity_from(actor, "Undo", inner)) == "processed"
    [interaction] = await relay.rows(Interaction)
    assert interaction.undone_at is not None


async def test_boost_and_its_undo_by_bare_id(relay: Relay, fleet: Fleet, post: Post) -> None:
    actor = fleet.actor(1, 0)
    boost = activity_from(actor, "Announce", post.object_uri)
    assert await relay.receive(actor, boost) == "processed"
    [interaction] = await relay.rows(Interaction)
    assert interaction.kind == "boost"
    assert await relay.receive(actor, activity_from(actor, "Undo", boost["id"])) == "processed"
    [interaction] = await relay.rows(Interaction)
    assert interaction.undone_at is not None


async def test_undo_by_another_actor_changes_nothing(
    relay: Relay, fleet: Fleet, post: Post
) -> None:
    liker, other = fleet.actor(0, 0), fleet.actor(0, 1)
    like = activity_from(liker, "Like", post.object_uri)
    await relay.receive(liker, like)
    # `other` is on the same origin, so the envelope passes; the Like is not theirs.
    assert await relay.receive(other, activity_from(other, "Undo", like["id"])) == "ignored"
    [interaction] = await relay.rows(Interaction)
    assert interaction.undone_at is None


def reply_note(actor: FleetActor, in_reply_to: str, content: str) -> dict[str, Any]:
    note_id = f"{actor.id}/statuses/{abs(hash(content))}"
    return {
        "id": note_id,
        "type": "Note",
        "attributedTo": actor.id,
        "inReplyTo": in_reply_to,
        "content": content,
        "url": f"{actor.host.base_url}/@{actor.handle}/1",
    }


async def test_reply_is_stored_with_sanitized_content(
    relay: Relay, fleet: Fleet, post: Post
) -> None:
    actor = fleet.actor(0, 0)
    note = reply_note(
        actor,
        post.object_uri,
        '<p>Nice<script>alert(1)</script> <a href="javascript:x">post</a></p>',
    )
    assert await relay.receive(actor, activity_from(actor, "Create", note)) == "processed"
    [reply] = await relay.rows(Interaction)
    assert reply.kind == "reply" and reply.actor_uri == actor.id
    assert reply.activity_uri == note["id"]
    assert reply.url == note["url"]
    assert "<script" not in reply.content_html and "javascript:" not in reply.content_html
    assert "Nice" in reply.content_html


async def test_create_that_is_not_a_reply_to_us_is_ignored(relay: Relay, fleet: Fleet) -> None:
    actor = fleet.actor(0, 0)
    note = reply_note(actor, f"{actor.host.base_url}/users/someone/statuses/1", "<p>hi</p>")
    assert await relay.receive(actor, activity_from(actor, "Create", note)) == "ignored"
    assert await relay.count(Interaction) == 0


async def test_update_of_a_reply_changes_its_content(
    relay: Relay, fleet: Fleet, post: Post
) -> None:
    actor = fleet.actor(0, 0)
    note = reply_note(actor, post.object_uri, "<p>first</p>")
    await relay.receive(actor, activity_from(actor, "Create", note))
    edited = {**note, "content": "<p>edited</p>"}
    assert await relay.receive(actor, activity_from(actor, "Update", edited)) == "processed"
    [reply] = await relay.rows(Interaction)
    assert reply.content_html == "<p>edited</p>"


async def test_delete_of_a_reply_removes_it(relay: Relay, fleet: Fleet, post: Post) -> None:
    actor = fleet.actor(0, 0)
    note = reply_note(actor, post.object_uri, "<p>oops</p>")
    await relay.receive(actor, activity_from(actor, "Create", note))
    tombstone = {"id": note["id"], "type": "Tombstone"}
    assert await relay.receive(actor, activity_from(actor, "Delete", tombstone)) == "processed"
    assert await relay.count(Interaction) == 0


# -- actors ---------------------------------------------------------------------------------


async def test_delete_of_an_actor_erases_everything_about_it(
    relay: Relay, fleet: Fleet, post: Post
) -> None:
    actor, bystander = fleet.actor(0, 0), fleet.actor(0, 1)
    await relay.follow(actor)
    await relay.follow(bystander)
    await relay.receive(actor, activity_from(actor, "Like", post.object_uri))
    await relay.receive(
        actor, activity_from(actor, "Create", reply_note(actor, post.object_uri, "x"))
    )
    await relay.receive(bystander, activity_from(bystander, "Like", post.object_uri))
    delete = activity_from(actor, "Delete", actor.id)
    assert await relay.receive(actor, delete) == "processed"
    assert await relay.count(Follower, Follower.actor_uri == actor.id) == 0
    assert await relay.count(Interaction, Interaction.actor_uri == actor.id) == 0
    assert await relay.count(RemoteActor, RemoteActor.uri == actor.id) == 0
    remaining = await relay.rows(InboxActivity, InboxActivity.actor_uri == actor.id)
    assert [row.activity_uri for row in remaining] == [delete["id"]]
    # Nobody else is touched.
    assert await relay.count(Follower, Follower.actor_uri == bystander.id) == 1
    assert await relay.count(Interaction, Interaction.actor_uri == bystander.id) == 1


async def test_update_of_an_actor_refreshes_its_inboxes(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    actor = fleet.actor(0, 0)
    await relay.follow(actor)
    document = actor.document()
    document.pop("@context")
    document["inbox"] = f"{actor.id}/new-inbox"
    document["endpoints"] = {"sharedInbox": f"{actor.host.base_url}/new-shared-inbox"}
    assert await relay.receive(actor, activity_from(actor, "Update", document)) == "processed"
    [follower] = await relay.rows(Follower)
    assert follower.inbox == f"{actor.id}/new-inbox"
    assert follower.shared_inbox == f"{actor.host.base_url}/new-shared-inbox"


async def test_move_to_an_account_that_names_the_old_one_drops_the_follower(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    old, new = fleet.actor(0, 0), fleet.actor(1, 1)
    await relay.follow(old)
    new.also_known_as.append(old.id)
    move = activity_from(old, "Move", old.id, target=new.id)
    assert await relay.receive(old, move) == "processed"
    assert await relay.count(Follower) == 0
    [remote] = await relay.rows(RemoteActor, RemoteActor.uri == old.id)
    assert remote.moved_to == new.id


async def test_move_to_an_account_that_does_not_name_the_old_one_is_ignored(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    old, new = fleet.actor(0, 0), fleet.actor(1, 1)
    await relay.follow(old)
    move = activity_from(old, "Move", old.id, target=new.id)
    assert await relay.receive(old, move) == "ignored"
    assert await relay.count(Follower) == 1


async def test_reject_of_our_follow_removes_the_following(
    relay: Relay, fleet: Fleet, account: Account, database: Database
) -> None:
    remote = fleet.actor(0, 0)
    follow_id = f"{relay.settings.base_url}/activities/our-follow"
    async with database.transaction() as session:
        session.add(
            Following(account_id=account.id, actor_uri=remote.id, follow_activity_id=follow_id)
        )
    reject = activity_from(
        remote, "Reject", {"id": follow_id, "type": "Follow", "actor": relay.actor_url}
    )
    assert await relay.receive(remote, reject) == "processed"
    assert await relay.count(Following) == 0


# -- everything else ------------------------------------------------------------------------


async def test_unhandled_activity_is_ignored_and_counted(
    relay: Relay, fleet: Fleet, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    actor = fleet.actor(0, 0)
    flag = activity_from(actor, "Flag", relay.actor_url)
    assert await relay.receive(actor, flag) == "ignored"
    state, note = await relay.state_of(flag["id"])
    assert state == "ignored" and note
    stats = (await client.get("/api/admin/inbox/stats", headers=admin_headers)).json()
    assert stats["ignored_by_type"] == {"Flag": 1}


async def test_processing_twice_changes_nothing(relay: Relay, fleet: Fleet, post: Post) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", post.object_uri)
    assert await relay.receive(actor, like) == "processed"
    row_id = await relay.row_id(like["id"])
    assert await relay.processor.process(row_id) is None
    assert await relay.count(Interaction) == 1


async def test_follow_processed_twice_sends_one_accept(
    relay: Relay, fleet: Fleet, account: Account
) -> None:
    actor = fleet.actor(0, 0)
    follow = await relay.follow(actor)
    assert await relay.processor.process(await relay.row_id(follow["id"])) is None
    assert await relay.count(Activity) == 1
    assert await relay.count(Delivery) == 1


async def test_sweeper_enqueues_activities_left_received(
    relay: Relay, fleet: Fleet, database: Database, redis: Redis, settings: Settings
) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", f"{settings.base_url}/objects/x")
    await post_signed(relay.client, settings, actor, like)
    row_id = await relay.row_id(like["id"])
    await redis.flushall()  # the job the inbox enqueued is lost
    async with database.transaction() as session:
        await session.execute(
            update(InboxActivity).values(received_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    queue = await JobQueue.connect(settings.redis_url or "", settings.queue_name)
    try:
        assert await enqueue_received(database, queue) == 1
    finally:
        await queue.close()
    assert await redis.exists(f"arq:job:{settings.queue_name}:inbox:{row_id}") == 1


async def test_a_processing_job_takes_along_the_activities_still_waiting(
    relay: Relay, fleet: Fleet, database: Database, settings: Settings
) -> None:
    actors = [fleet.actor(n % 2, n // 2) for n in range(4)]
    sent = [(a, activity_from(a, "Like", f"{settings.base_url}/objects/x")) for a in actors]
    first, own, *waiting = await _received(relay, settings, sent)
    await relay.processor.process(first)

    assert await waiting_received(database, [own], 10) == waiting
    assert await waiting_received(database, [own], 1) == waiting[:1]


async def test_follower_snapshot_records_the_day_count_per_account(
    relay: Relay, fleet: Fleet, account: Account, database: Database
) -> None:
    await create_account(database, "quiet")
    await relay.follow(fleet.actor(0, 0))
    await relay.follow(fleet.actor(1, 0))
    day = datetime.now(UTC).date()
    assert await snapshot_followers(database, day) == 2
    await relay.follow(fleet.actor(1, 1))
    await snapshot_followers(database, day)
    snapshots = {
        row.account_id: row.followers
        for row in await relay.rows(FollowerSnapshot, FollowerSnapshot.day == day)
    }
    assert snapshots[account.id] == 3
    assert sorted(snapshots.values()) == [0, 3]


class _FailingOn(InboxProcessor):
    """A processor whose handling of one activity raises, as a bug or a bad row would."""

    def __init__(self, base: InboxProcessor, failing_activity_id: str) -> None:
        super().__init__(base._database, base._urls, base._fetch)
        self.failing_activity_id = failing_activity_id

    async def _apply(self, session, item, prepared, document, received_at, row_id):  # type: ignore[no-untyped-def]
        if item.activity_id == self.failing_activity_id:
            raise RuntimeError("cannot apply this one")
        return await super()._apply(session, item, prepared, document, received_at, row_id)


async def test_a_failing_activity_does_not_hold_back_the_rest_of_its_batch(
    relay: Relay, fleet: Fleet, post: Post, settings: Settings
) -> None:
    likes = [activity_from(fleet.actor(0, n), "Like", post.object_uri) for n in range(3)]
    row_ids = []
    for n, like in enumerate(likes):
        response = await post_signed(relay.client, settings, fleet.actor(0, n), like)
        assert response.status_code == 202
        row_ids.append(await relay.row_id(like["id"]))
    processor = _FailingOn(relay.processor, likes[1]["id"])

    states = await processor.process_many(row_ids)

    assert states == ["processed", "failed", "processed"]
    assert await relay.count(Interaction) == 2
    assert (await relay.state_of(likes[1]["id"]))[0] == "failed"
