"""Applying a received activity to the relay's state (runs in the worker).

Each stored InboxActivity is processed at most once: the transaction that applies it
first moves it out of `received` with a conditional UPDATE, so a second run (a repeated
job, the sweeper racing the worker) finds nothing to claim and changes nothing. Remote
documents (the follower's actor, a Move's target) are fetched before that transaction,
so no lock is held across network I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from federation.activitypub.inbox_activities import (
    ActorEndpoints,
    ClassifiedActivity,
    InboxAction,
    actor_endpoints,
    classify,
    local_handle,
    move_is_authorised,
)
from federation.activitypub.urls import InstanceUrls
from federation.rendering.html_sanitizer import sanitize_html
from service.community.backfill import backfill_new_follower
from service.community.follow_answers import answer_follows
from service.db.engine import Database
from service.db.models import (
    Account,
    Follower,
    Following,
    InboxActivity,
    Interaction,
    Post,
    RemoteActor,
)
from service.publishing.activity_records import PublishedActivity, enqueue_deliveries
from service.remote.actors import (
    actor_host,
    find_remote_actor,
    forget_remote_actor,
    fresh_endpoints,
    record_remote_actors,
    remember_endpoints,
    stored_endpoints,
    upsert_statement,
)
from service.remote.documents import RemoteFetchError
from service.runtime.job_queue import JobQueue

log = logging.getLogger(__name__)

DocumentFetcher = Callable[[str], Awaitable[dict[str, Any]]]

# A follower's actor document fetched this recently (when its Follow's signature was
# verified) is not fetched again to answer the Follow.
FOLLOWER_DOCUMENT_MAX_AGE = timedelta(minutes=10)

# Activities applied in one transaction: enough to share its cost, few enough that a
# failure (which applies them again one by one) costs little.
APPLY_GROUP = 200

PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"


@dataclass(slots=True)
class Outcome:
    state: str
    note: str | None = None
    published: list[PublishedActivity] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What was fetched from the network before the transaction."""

    endpoints: ActorEndpoints | None = None
    # The endpoints are the stored ones, so there is nothing new to record.
    endpoints_stored: bool = False
    move_authorised: bool = False
    failure: Outcome | None = None


@dataclass(frozen=True, slots=True)
class _Received:
    row_id: int
    document: dict[str, Any]
    received_at: datetime
    classified: ClassifiedActivity


def _ignored(note: str) -> Outcome:
    return Outcome(IGNORED, note)


class InboxProcessor:
    def __init__(self, database: Database, urls: InstanceUrls, fetch: DocumentFetcher) -> None:
        self._database = database
        self._urls = urls
        self._fetch = fetch

    async def process(self, row_id: int, queue: JobQueue | None = None) -> str | None:
        """Apply one stored activity; return its final state, or None if it was not ours
        to process (unknown id, already processed)."""
        return (await self.process_many([row_id], queue))[0]

    async def process_many(
        self, row_ids: Sequence[int], queue: JobQueue | None = None
    ) -> list[str | None]:
        """Apply stored activities, several to a transaction, then wake the workers once
        for everything they published (a burst of Follows becomes one delivery job of
        Accepts, not one job each). A group whose transaction fails is applied again one
        activity at a time, so one bad activity cannot hold back the others."""
        items = await self._load_received(row_ids)
        prepared = await self._prepare_all([item.classified for item in items])
        states: dict[int, str | None] = dict.fromkeys(row_ids)
        published: list[PublishedActivity] = []
        pairs = list(zip(items, prepared, strict=True))
        for start in range(0, len(pairs), APPLY_GROUP):
            group = pairs[start : start + APPLY_GROUP]
            results = await self._apply_group(group) if len(group) > 1 else None
            if results is None:
                results = [await self._apply_alone(item, ready) for item, ready in group]
            for (item, _), (state, outcome_published) in zip(group, results, strict=True):
                states[item.row_id] = state
                published.extend(outcome_published)
        await enqueue_deliveries(queue, published)
        return [states[row_id] for row_id in row_ids]

    async def _load_received(self, row_ids: Sequence[int]) -> list[_Received]:
        async with self._database.session() as session:
            rows = await session.execute(
                select(InboxActivity.id, InboxActivity.document, InboxActivity.received_at)
                .where(InboxActivity.id.in_(list(row_ids)), InboxActivity.state == "received")
                .order_by(InboxActivity.id)
            )
            return [
                _Received(
                    row_id, dict(document), received_at, classify(document, self._urls.base_url)
                )
                for row_id, document, received_at in rows
            ]

    async def _apply_group(
        self, group: list[tuple[_Received, Prepared]]
    ) -> list[tuple[str | None, list[PublishedActivity]]] | None:
        try:
            async with self._database.transaction() as session:
                claimed = await _claim(session, [item.row_id for item, _ in group])
                results: dict[int, tuple[str | None, list[PublishedActivity]]] = {}
                for batch in _batches([pair for pair in group if pair[0].row_id in claimed]):
                    if len(batch) == 1:
                        item, ready = batch[0]
                        results[item.row_id] = await self._apply_one(session, item, ready)
                        continue
                    outcomes = await self._follow_many(
                        session, [(item.classified, ready) for item, ready in batch]
                    )
                    for (item, _), outcome in zip(batch, outcomes, strict=True):
                        results[item.row_id] = await _record(session, item.row_id, outcome)
                return [results.get(item.row_id, (None, [])) for item, _ in group]
        except Exception:  # applied again one by one, where the failure is recorded
            log.warning("applying %d inbox activities together failed", len(group), exc_info=True)
            return None

    async def _apply_alone(
        self, item: _Received, ready: Prepared
    ) -> tuple[str | None, list[PublishedActivity]]:
        try:
            async with self._database.transaction() as session:
                if not await _claim(session, [item.row_id]):
                    return None, []
                return await self._apply_one(session, item, ready)
        except Exception as error:  # recorded on the row; the worker must go on
            log.exception("processing inbox activity %s failed", item.row_id)
            await self._mark_failed(item.row_id, f"{type(error).__name__}: {error}")
            return FAILED, []

    async def _apply_one(
        self, session: AsyncSession, item: _Received, ready: Prepared
    ) -> tuple[str | None, list[PublishedActivity]]:
        """Apply an activity its caller has claimed, in the caller's transaction."""
        outcome = ready.failure or await self._apply(
            session, item.classified, ready, item.document, item.received_at, item.row_id
        )
        return await _record(session, item.row_id, outcome)

    async def _mark_failed(self, row_id: int, note: str) -> None:
        async with self._database.transaction() as session:
            await session.execute(
                update(InboxActivity)
                .where(InboxActivity.id == row_id, InboxActivity.state == "received")
                .values(state=FAILED, error=note[:2000], processed_at=datetime.now(UTC))
            )

    # -- network, before the transaction ----------------------------------------------

    async def _prepare_all(self, activities: list[ClassifiedActivity]) -> list[Prepared]:
        # Verifying a Follow's signature has usually just stored its actor's document.
        followers = [a.actor for a in activities if a.action is InboxAction.FOLLOW]
        known: dict[str, ActorEndpoints] = {}
        if followers:
            async with self._database.session() as session:
                known = await fresh_endpoints(session, followers, FOLLOWER_DOCUMENT_MAX_AGE)
        return [await self._prepare(activity, known) for activity in activities]

    async def _prepare(
        self, classified: ClassifiedActivity, known: dict[str, ActorEndpoints]
    ) -> Prepared:
        if classified.action is InboxAction.FOLLOW:
            stored = known.get(classified.actor)
            if stored is not None:
                return Prepared(endpoints=stored, endpoints_stored=True)
            return await self._prepare_follow(classified.actor)
        if classified.action is InboxAction.MOVE and classified.target is not None:
            try:
                target = await self._fetch(classified.target)
            except RemoteFetchError as error:
                return Prepared(failure=_ignored(f"Move target unavailable: {error.reason}"))
            return Prepared(move_authorised=move_is_authorised(target, classified.actor))
        return Prepared()

    async def _prepare_follow(self, actor: str) -> Prepared:
        try:
            document = await self._fetch(actor)
        except RemoteFetchError as error:
            known = await self._known_endpoints(actor)
            if known is not None:
                return Prepared(endpoints=known)
            return Prepared(failure=Outcome(FAILED, f"follower unavailable: {error}"))
        endpoints = actor_endpoints(document)
        if endpoints is None or endpoints.actor_id != actor:
            return Prepared(failure=Outcome(FAILED, "follower's actor document has no inbox"))
        return Prepared(endpoints=endpoints)

    async def _known_endpoints(self, actor: str) -> ActorEndpoints | None:
        async with self._database.session() as session:
            remote = await find_remote_actor(session, actor)
        if remote is None or not remote.inbox:
            return None
        return stored_endpoints(remote)

    # -- the transaction ---------------------------------------------------------------

    async def _apply(
        self,
        session: AsyncSession,
        item: ClassifiedActivity,
        prepared: Prepared,
        document: dict[str, Any],
        received_at: datetime,
        row_id: int,
    ) -> Outcome:
        action = item.action
        if action is InboxAction.FOLLOW:
            return (await self._follow_many(session, [(item, prepared)]))[0]
        if action is InboxAction.UNDO_FOLLOW:
            return await self._undo_follow(session, item)
        if action in (InboxAction.LIKE, InboxAction.BOOST):
            return await self._interaction(session, item, received_at)
        if action is InboxAction.UNDO_INTERACTION:
            return await self._undo_interaction(session, item)
        if action is InboxAction.REPLY:
            return await self._reply(session, item, received_at)
        if action is InboxAction.UPDATE_REPLY:
            return await self._update_reply(session, item)
        if action is InboxAction.DELETE_ACTOR:
            return await self._erase_actor(session, item.actor, row_id)
        if action is InboxAction.DELETE_OBJECT:
            return await self._delete_object(session, item)
        if action is InboxAction.UPDATE_ACTOR:
            return await self._update_actor(session, item)
        if action is InboxAction.MOVE:
            return await self._move(session, item, prepared.move_authorised)
        if action is InboxAction.BLOCK:
            return await self._block(session, item)
        if action in (InboxAction.ACCEPT_FOLLOW, InboxAction.REJECT_FOLLOW):
            return await self._follow_answered(session, item)
        return _ignored(item.reason or "not handled")

    async def _local_account(self, session: AsyncSession, actor_url: str) -> Account | None:
        handle = local_handle(actor_url, self._urls.base_url)
        if handle is None:
            return None
        # Activities applied together nearly always concern the same account (a burst of
        # Follows): it is looked up once per transaction.
        known: dict[str, Account | None] = session.info.setdefault("accounts_by_handle", {})
        handle = handle.lower()
        if handle not in known:
            # Applying an activity never signs anything: the keys stay unloaded.
            known[handle] = (
                await session.execute(
                    select(Account).where(Account.handle == handle).options(raiseload(Account.keys))
                )
            ).scalar_one_or_none()
        return known[handle]

    async def _follow_many(
        self, session: AsyncSession, follows: list[tuple[ClassifiedActivity, Prepared]]
    ) -> list[Outcome]:
        """Record Follows (of distinct actors) and answer the accepted ones: one upsert for
        the followers and two statements for all the Accepts, however many Follows."""
        outcomes: list[Outcome | None] = [None] * len(follows)
        accounts: list[Account | None] = []
        rows: list[dict[str, Any]] = []
        fetched: list[ActorEndpoints] = []
        now = datetime.now(UTC)
        for index, (item, prepared) in enumerate(follows):
            account = await self._local_account(session, item.object_id or "")
            accounts.append(account)
            if account is None:
                outcomes[index] = _ignored("follow of an unknown account")
                continue
            endpoints = prepared.endpoints
            assert endpoints is not None  # noqa: S101 - _prepare guarantees it
            if not prepared.endpoints_stored:
                fetched.append(endpoints)
            rows.append(
                {
                    "account_id": account.id,
                    "actor_uri": item.actor,
                    "host": actor_host(item.actor),
                    "inbox": endpoints.inbox,
                    "shared_inbox": endpoints.shared_inbox,
                    "state": "pending" if account.manually_approves_followers else "accepted",
                    "follow_activity_id": item.activity_id,
                    "created_at": now,
                }
            )
        # The batch's actors are distinct, so one upsert records all their documents.
        if fetched:
            await record_remote_actors(session, endpoints=fetched)
        followers = await _upsert_followers(session, rows)
        to_accept: dict[int, list[tuple[int, Follower]]] = {}
        for index, ((item, _), account) in enumerate(zip(follows, accounts, strict=True)):
            if account is None:
                continue
            follower = followers[(account.id, item.actor)]
            if follower.state != "accepted":
                outcomes[index] = Outcome(PROCESSED, "awaiting approval")
            else:
                to_accept.setdefault(account.id, []).append((index, follower))
        for entries in to_accept.values():
            account = accounts[entries[0][0]]
            assert account is not None  # noqa: S101 - only known accounts get here
            accepts = await answer_follows(
                session, account, [follower for _, follower in entries], "Accept", self._urls
            )
            for (index, follower), accept in zip(entries, accepts, strict=True):
                backfill = await backfill_new_follower(session, account, follower, self._urls)
                outcomes[index] = Outcome(PROCESSED, published=[accept, *backfill])
        return [outcome or _ignored("not handled") for outcome in outcomes]

    async def _undo_follow(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        query = delete(Follower).where(Follower.actor_uri == item.actor)
        account = await self._local_account(session, item.target or "")
        if account is not None:
            query = query.where(Follower.account_id == account.id)
        else:
            query = query.where(Follower.follow_activity_id == item.object_id)
        removed = await _rowcount(session, query)
        return Outcome(PROCESSED) if removed else _ignored("no such follow")

    async def _published_post(self, session: AsyncSession, object_id: str) -> Post | None:
        return (
            await session.execute(
                select(Post).where(Post.object_uri == object_id, Post.state == "published")
            )
        ).scalar_one_or_none()

    async def _interaction(
        self, session: AsyncSession, item: ClassifiedActivity, received_at: datetime
    ) -> Outcome:
        kind = "like" if item.action is InboxAction.LIKE else "boost"
        post = await self._published_post(session, item.object_id or "")
        if post is None:
            return _ignored(f"{kind} of an unknown or deleted object")
        already = await session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(
                Interaction.post_id == post.id,
                Interaction.kind == kind,
                Interaction.actor_uri == item.actor,
                Interaction.undone_at.is_(None),
            )
        )
        if already:
            return _ignored(f"{kind} repeated by the same actor")
        statement = (
            upsert_statement(session, Interaction)
            .values(
                post_id=post.id,
                account_id=post.account_id,
                kind=kind,
                actor_uri=item.actor,
                activity_uri=item.activity_id,
                created_at=received_at,
            )
            .on_conflict_do_nothing(index_elements=[Interaction.activity_uri])
        )
        await session.execute(statement)
        return Outcome(PROCESSED)

    async def _undo_interaction(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        now = datetime.now(UTC)
        undone = await _rowcount(
            session,
            update(Interaction)
            .where(
                Interaction.activity_uri == item.object_id,
                Interaction.actor_uri == item.actor,
                Interaction.kind.in_(("like", "boost")),
                Interaction.undone_at.is_(None),
            )
            .values(undone_at=now),
        )
        if undone:
            return Outcome(PROCESSED)
        # An Undo naming only the id of a Follow (some servers do that).
        removed = await _rowcount(
            session,
            delete(Follower).where(
                Follower.follow_activity_id == item.object_id, Follower.actor_uri == item.actor
            ),
        )
        if removed:
            return Outcome(PROCESSED)
        return _ignored("nothing to undo")

    async def _reply(
        self, session: AsyncSession, item: ClassifiedActivity, received_at: datetime
    ) -> Outcome:
        note = item.reply
        assert note is not None  # noqa: S101 - classify sets it for replies
        post = await self._published_post(session, note.in_reply_to)
        if post is None:
            return _ignored("reply to an unknown or deleted object")
        # A reply is keyed by its note's id, so a later Update or Delete of the note finds it.
        statement = (
            upsert_statement(session, Interaction)
            .values(
                post_id=post.id,
                account_id=post.account_id,
                kind="reply",
                actor_uri=item.actor,
                activity_uri=note.note_id,
                url=note.url,
                content_html=sanitize_html(note.content_html),
                created_at=received_at,
            )
            .on_conflict_do_nothing(index_elements=[Interaction.activity_uri])
        )
        await session.execute(statement)
        return Outcome(PROCESSED)

    async def _update_reply(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        note = item.reply
        assert note is not None  # noqa: S101 - classify sets it for replies
        changed = await _rowcount(
            session,
            update(Interaction)
            .where(
                Interaction.activity_uri == note.note_id,
                Interaction.actor_uri == item.actor,
                Interaction.kind == "reply",
            )
            .values(content_html=sanitize_html(note.content_html), url=note.url),
        )
        return Outcome(PROCESSED) if changed else _ignored("update of an unknown reply")

    async def _delete_object(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        removed = await _rowcount(
            session,
            delete(Interaction).where(
                Interaction.activity_uri == item.object_id,
                Interaction.actor_uri == item.actor,
                Interaction.kind == "reply",
            ),
        )
        return Outcome(PROCESSED) if removed else _ignored("delete of something not stored")

    async def _erase_actor(self, session: AsyncSession, actor: str, row_id: int) -> Outcome:
        """A deleted account leaves nothing behind: not as a follower, not its likes, boosts
        or replies, not its keys, not the activities it sent (except this Delete, which is
        what makes a repeat of it a no-op)."""
        await session.execute(delete(Follower).where(Follower.actor_uri == actor))
        await session.execute(delete(Following).where(Following.actor_uri == actor))
        await session.execute(delete(Interaction).where(Interaction.actor_uri == actor))
        await forget_remote_actor(session, actor)
        await session.execute(
            delete(InboxActivity).where(
                InboxActivity.actor_uri == actor, InboxActivity.id != row_id
            )
        )
        return Outcome(PROCESSED)

    async def _update_actor(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        endpoints = actor_endpoints(item.actor_document)
        if endpoints is None or endpoints.actor_id != item.actor:
            return _ignored("actor update without a usable inbox")
        await remember_endpoints(session, endpoints)
        await session.execute(
            update(Follower)
            .where(Follower.actor_uri == item.actor)
            .values(inbox=endpoints.inbox, shared_inbox=endpoints.shared_inbox)
        )
        return Outcome(PROCESSED)

    async def _move(
        self, session: AsyncSession, item: ClassifiedActivity, authorised: bool
    ) -> Outcome:
        if not authorised:
            return _ignored("the Move target does not list the old actor in alsoKnownAs")
        removed = await _rowcount(session, delete(Follower).where(Follower.actor_uri == item.actor))
        await session.execute(
            update(RemoteActor).where(RemoteActor.uri == item.actor).values(moved_to=item.target)
        )
        return Outcome(PROCESSED, f"dropped {removed} follows of the moved actor")

    async def _block(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        account = await self._local_account(session, item.object_id or "")
        if account is None:
            return _ignored("block of an unknown account")
        await session.execute(
            delete(Follower).where(
                Follower.account_id == account.id, Follower.actor_uri == item.actor
            )
        )
        return Outcome(PROCESSED)

    async def _follow_answered(self, session: AsyncSession, item: ClassifiedActivity) -> Outcome:
        query_filter = (
            Following.follow_activity_id == item.object_id,
            Following.actor_uri == item.actor,
        )
        if item.action is InboxAction.ACCEPT_FOLLOW:
            changed = await _rowcount(
                session, update(Following).where(*query_filter).values(state="accepted")
            )
        else:
            changed = await _rowcount(session, delete(Following).where(*query_filter))
        return Outcome(PROCESSED) if changed else _ignored("answer to a follow we did not send")


def _batches(
    pairs: list[tuple[_Received, Prepared]],
) -> list[list[tuple[_Received, Prepared]]]:
    """The activities in order, consecutive Follows that can be recorded together (ready,
    of distinct actors) in one batch, everything else alone: order between an actor's
    activities is kept, and one upsert never touches a row twice."""
    batches: list[list[tuple[_Received, Prepared]]] = []
    actors: set[str] = set()
    for pair in pairs:
        item, ready = pair
        batchable = item.classified.action is InboxAction.FOLLOW and ready.failure is None
        current = batches[-1] if batches else None
        if (
            batchable
            and current is not None
            and item.classified.actor not in actors
            and current[-1][0].classified.action is InboxAction.FOLLOW
            and current[-1][1].failure is None
        ):
            current.append(pair)
        else:
            batches.append([pair])
            actors = set()
        actors.add(item.classified.actor)
    return batches


async def _upsert_followers(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> dict[tuple[int, str], Follower]:
    """Insert the followers, or refresh the rows of those already known: a repeated Follow
    (the remote lost track of it) is answered again, its state kept, so a pending request
    stays pending."""
    if not rows:
        return {}
    statement = upsert_statement(session, Follower)
    statement = statement.on_conflict_do_update(
        index_elements=[Follower.account_id, Follower.actor_uri],
        set_={
            "inbox": statement.excluded.inbox,
            "shared_inbox": statement.excluded.shared_inbox,
            "follow_activity_id": statement.excluded.follow_activity_id,
        },
    )
    followers = await session.scalars(
        statement.returning(Follower), rows, execution_options={"populate_existing": True}
    )
    return {(follower.account_id, follower.actor_uri): follower for follower in followers}


async def _record(
    session: AsyncSession, row_id: int, outcome: Outcome
) -> tuple[str | None, list[PublishedActivity]]:
    """Write an outcome other than the claim's `processed` on the row."""
    if outcome.state != PROCESSED:
        await session.execute(
            update(InboxActivity)
            .where(InboxActivity.id == row_id)
            .values(state=outcome.state, error=outcome.note)
        )
    return outcome.state, outcome.published


async def _claim(session: AsyncSession, row_ids: list[int]) -> set[int]:
    """Mark the rows processed (an outcome other than that is written over it); return the
    ids that were still waiting, which are this transaction's to apply."""
    claimed = await session.execute(
        update(InboxActivity)
        .where(InboxActivity.id.in_(row_ids), InboxActivity.state == "received")
        .values(state=PROCESSED, processed_at=datetime.now(UTC))
        .returning(InboxActivity.id)
    )
    return set(claimed.scalars())


async def _rowcount(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
