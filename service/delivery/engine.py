"""The fan-out engine: one job per activity (or per batch of small ones), a fixed pool of
senders per process.

A job claims its activities' due deliveries a few dozen at a time, just ahead of the senders
(a sliding window): a claim takes room in the process's claim window, which comes back only
once the delivery's outcome is committed, so the rows held in flight never exceed the window
(`delivery_concurrency`), however many activities a process works on. The body and its digest
are built once per activity; the RSA signatures of a claim are made together on a signing
thread (the signature releases the GIL) while the event loop does the I/O. A fixed pool of
sender coroutines posts the deliveries; outcomes go to one writer that commits whatever has
accumulated while the previous commit ran (group commit), then hands the room back.

Concurrency is bounded per process (the window) and per destination host (host slots); a
host whose slots are taken and which has a backlog is left out of further claims, so a slow
server holds at most a handful of the window and cannot starve the others.

At-least-once: a delivery is marked in flight with a lease before it is posted, and its
outcome is committed after. A worker killed in between leaves rows in flight; once their
lease expires the sweeper hands them to another worker, which posts them again. The
duplicates a kill can cause are therefore at most the rows in flight at that moment, at most
the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from federation.activitypub.urls import InstanceUrls
from federation.peers.host_health import HEALTHY, Admission, HostHealth, HostPolicy
from federation.peers.retry_schedule import (
    RetrySchedule,
    Verdict,
    classify_status,
    parse_retry_after,
)
from federation.signatures.keys import load_rsa_private_key
from service.accounts.store import active_key
from service.db.engine import Database
from service.db.models import Account, Activity
from service.db.transactions import Transactions
from service.delivery.signed_posts import TOTAL_TIMEOUT, InboxPoster, PreparedActivity
from service.delivery.store import (
    ClaimedDelivery,
    Outcome,
    SyncExecutor,
    claim_due_sync,
    due_activity_ids,
    load_host_health_sync,
    next_wake_times,
    park_for_unavailable_hosts,
    waiting_successors,
    write_outcomes_sync,
)
from service.delivery.tracking import ClaimWindow, HostHealthTracker, HostSlots
from service.publishing.activity_records import enqueue_fanout
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

# The writer waits this long for more outcomes before a commit, unless a waiting claim can
# go once they are committed or this many outcomes are ready: enough to batch, far below a
# request's latency.
COMMIT_LINGER = 0.005
COMMIT_EAGER_SIZE = 64
# While the window is full a commit too small to let the waiting claim go frees nothing
# anyone can use, so outcomes gather longer (a commit costs far more than an outcome in it).
COMMIT_LINGER_WINDOW_FULL = 0.05
SWEEP_LIMIT = 1000
# A host gets no new claims while its slots are taken and this many more deliveries wait.
HOST_BACKLOG = 8


@dataclass(frozen=True, slots=True)
class AttemptResult:
    verdict: Verdict
    status: int | None
    error: str | None
    duration_ms: int
    retry_after_seconds: float | None = None
    # Not attempted at all: wait until then (a rate limit known in advance).
    defer_until: datetime | None = None
    # The host answered (even with a refusal): it is alive as far as health goes.
    host_answered: bool = True


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    id: int
    uri: str
    type: str
    account_id: int
    post_id: int | None
    created_at: datetime
    document: dict[str, Any]


class MastodonDispatcher(Protocol):
    async def deliver(
        self, activity: ActivitySnapshot, delivery: ClaimedDelivery
    ) -> AttemptResult: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutcomeWriter:
    """Commits the outcomes of every job in the process, then gives their room in the claim
    window back. One commit at a time; the outcomes that arrive during a commit go in the
    next one, so the batch grows with the load. A commit is made as soon as it lets a waiting
    claim go (or a full batch is ready), otherwise after a short linger: each commit costs
    the database more than the outcomes in it, and with the window full, commits of a
    handful of outcomes made most of that cost while freeing room no claim could use."""

    def __init__(
        self,
        transactions: Transactions,
        window: ClaimWindow,
        *,
        linger: float = COMMIT_LINGER,
        linger_window_full: float = COMMIT_LINGER_WINDOW_FULL,
    ) -> None:
        self.transactions = transactions
        self.window = window
        self.linger = linger
        self.linger_window_full = linger_window_full
        self._outcomes: list[Outcome] = []
        self._runs: list[_Run] = []
        self._hosts: dict[str, tuple[HostHealth, str | None, datetime]] = {}
        # Something to commit; and whether it is worth committing before the linger is over.
        self._ready = asyncio.Event()
        self._now = asyncio.Event()
        self._lock = asyncio.Lock()
        self.flushes = 0

    def add(self, outcome: Outcome, run: _Run) -> None:
        self._outcomes.append(outcome)
        self._runs.append(run)
        self._ready.set()
        if self._worth_committing_now():
            self._now.set()

    def host_changed(self, host: str, health: HostHealth, error: str | None) -> None:
        self._hosts[host] = (health, error, utcnow())
        self._ready.set()

    def _worth_committing_now(self) -> bool:
        pending = len(self._outcomes)
        return pending >= COMMIT_EAGER_SIZE or self.window.admits_after(pending)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            if not self._now.is_set():
                linger = self.linger_window_full if self.window.waiting else self.linger
                # asyncio.wait, not a timeout around the wait: on Python 3.11 a cancellation
                # arriving as the timeout fires can come out as the TimeoutError, which would
                # be suppressed here, leaving this loop running and `close()` waiting on it.
                commit_now = asyncio.ensure_future(self._now.wait())
                try:
                    await asyncio.wait({commit_now}, timeout=linger)
                finally:
                    commit_now.cancel()
            self._ready.clear()
            self._now.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._outcomes and not self._hosts:
                return
            outcomes, self._outcomes = self._outcomes, []
            runs, self._runs = self._runs, []
            hosts, self._hosts = self._hosts, {}
            try:
                await self._write(outcomes, hosts)
            finally:
                self.window.release(len(outcomes))
                for run in runs:
                    run.settled()

    async def _write(
        self, outcomes: list[Outcome], hosts: dict[str, tuple[HostHealth, str | None, datetime]]
    ) -> None:
        for attempt in range(5):
            try:
                await self.transactions.run(write_outcomes_sync, outcomes, hosts)
                self.flushes += 1
                return
            except Exception:  # a lost outcome costs a duplicate, so retry hard
                log.exception("writing %d delivery outcomes failed", len(outcomes))
                await asyncio.sleep(0.2 * (attempt + 1))
        log.error("gave up writing %d outcomes; their leases will expire", len(outcomes))


@dataclass(frozen=True, slots=True)
class _Activity:
    snapshot: ActivitySnapshot
    prepared: PreparedActivity | None


@dataclass(slots=True)
class _Run:
    """One job's work: the activities it delivers and its claims still unsettled."""

    activities: dict[int, _Activity]
    started_at: datetime
    finished_keys: set[str] = field(default_factory=set)
    attempted: int = 0
    # Claimed deliveries whose outcome is not committed yet.
    outstanding: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def settled(self) -> None:
        self.outstanding -= 1
        self.progress.set()

    async def wait_until_settled(self) -> None:
        while self.outstanding > 0:
            self.progress.clear()
            await self.progress.wait()


@dataclass(frozen=True, slots=True)
class _Send:
    run: _Run
    activity: _Activity
    delivery: ClaimedDelivery
    headers: dict[str, str] | None


class DeliveryEngine:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        queue: JobQueue | None,
        poster: InboxPoster,
        *,
        mastodon: MastodonDispatcher | None = None,
        host_policy: HostPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.queue = queue
        self.poster = poster
        self.mastodon = mastodon
        self.urls = InstanceUrls(settings.base_url)
        self.schedule = RetrySchedule(
            max_retries=settings.delivery_max_retries,
            time_scale=settings.delivery_retry_time_scale,
        )
        self.hosts = HostHealthTracker(host_policy or HostPolicy())
        self.host_slots = HostSlots(settings.delivery_per_host_concurrency)
        self.window = ClaimWindow(settings.delivery_concurrency)
        self.claim_size = max(1, min(settings.delivery_batch_size, settings.delivery_concurrency))
        # Claim again once this much of the window is free: small enough to keep the senders
        # busy, large enough that a claim's round trip is shared by many deliveries.
        self.refill = max(1, min(self.claim_size, settings.delivery_concurrency // 4))
        self.lease_margin = timedelta(
            seconds=min(TOTAL_TIMEOUT + 5.0, settings.delivery_lease_seconds / 2)
        )
        self.rng = rng or random.Random()
        self.transactions = Transactions(database, "delivery-store")
        self.writer = OutcomeWriter(self.transactions, self.window)
        self.signer = (
            ThreadPoolExecutor(settings.delivery_signing_threads, "delivery-signing")
            if settings.delivery_signing_threads > 0
            else None
        )
        self._sends: asyncio.Queue[_Send] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    def _ensure_running(self) -> None:
        if self._workers and not self._workers[0].done():
            return
        self._workers = [asyncio.create_task(self.writer.run())]
        self._workers.extend(
            asyncio.create_task(self._sender()) for _ in range(self.settings.delivery_concurrency)
        )

    async def close(self) -> None:
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.writer.flush()
        await self.transactions.close()
        if self.signer is not None:
            self.signer.shutdown(wait=False, cancel_futures=True)

    # -- one activity ------------------------------------------------------------------

    async def deliver_activity(self, activity_row_id: int) -> int:
        return await self.deliver_activities([activity_row_id])

    async def deliver_activities(self, activity_row_ids: Sequence[int]) -> int:
        """Attempt every claimable delivery of the activities; return how many were attempted.

        The activities share the claims (one statement over all of them, lowest delivery ids
        first) and the commits, so a job of many one-delivery activities (Accepts) costs
        about what one activity with as many deliveries does."""
        run = await self._load(activity_row_ids)
        if run is None:
            return 0
        self._ensure_running()
        activity_ids = sorted(run.activities)
        async with self.database.engine.begin() as connection:
            await park_for_unavailable_hosts(connection, activity_ids)
        cursor = 0
        # The cursor of the first claim of this pass that left saturated hosts out: their
        # deliveries lie beyond it, so the walk goes back there once some work has drained.
        revisit_from: int | None = None
        try:
            while True:
                room = await self.window.reserve(self.claim_size, self.refill)
                # With nothing of its own in progress a run skips no host: it would only wait.
                skipped = self.host_slots.saturated(HOST_BACKLOG) if run.outstanding else []
                if skipped and revisit_from is None:
                    revisit_from = cursor
                try:
                    claimed = await self._claim(activity_ids, room, cursor, skipped)
                except BaseException:
                    self.window.release(room)
                    raise
                self.window.release(room - len(claimed))
                if claimed:
                    cursor = claimed[-1].id
                    await self._dispatch(run, claimed)
                if len(claimed) == room:
                    continue
                if revisit_from is None:
                    break
                if skipped:
                    run.progress.clear()
                    await run.progress.wait()
                cursor, revisit_from = revisit_from, None
        finally:
            await run.wait_until_settled()
        await self._wake_later_work(run)
        return run.attempted

    async def _dispatch(self, run: _Run, claimed: list[ClaimedDelivery]) -> None:
        """Sign the claim's POSTs together (one hop to the signing thread), then queue them."""
        run.outstanding += len(claimed)
        activities = [run.activities[delivery.activity_id] for delivery in claimed]
        signed: list[dict[str, str] | None] = [None] * len(claimed)
        to_sign = [
            (index, delivery.inbox, prepared)
            for index, (delivery, activity) in enumerate(zip(claimed, activities, strict=True))
            if delivery.mastodon_target_id is None
            and (prepared := activity.prepared) is not None
            # A refused inbox is never posted to, and one unusable URL must not fail the
            # whole claim's signing.
            and self.poster.refusal(delivery.inbox) is None
        ]
        if to_sign and self.signer is not None:
            try:
                headers = await asyncio.get_running_loop().run_in_executor(
                    self.signer, self._sign_all, to_sign
                )
            except Exception:  # signed again by the sender; never lose the claim
                log.exception("signing %d deliveries failed", len(to_sign))
            else:
                for (index, _, _), headers_of_one in zip(to_sign, headers, strict=True):
                    signed[index] = headers_of_one
        for delivery, activity, headers_of_one in zip(claimed, activities, signed, strict=True):
            self._sends.put_nowait(_Send(run, activity, delivery, headers_of_one))

    def _sign_all(self, requests: list[tuple[int, str, PreparedActivity]]) -> list[dict[str, str]]:
        return [self.poster.signed_headers(inbox, prepared) for _, inbox, prepared in requests]

    async def _sender(self) -> None:
        while True:
            send = await self._sends.get()
            try:
                await self._deliver_one(send.run, send.activity, send.delivery, send.headers)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the pool; the lease brings the row back
                log.exception("delivery %s failed unexpectedly", send.delivery.id)
                self.window.release(1)
                send.run.settled()

    async def _load(self, activity_row_ids: Sequence[int]) -> _Run | None:
        """The activities to deliver, each with its body and signing key, or None when none
        is left (unknown, or its account is paused)."""
        activities: dict[int, _Activity] = {}
        async with self.database.session() as session:
            rows = await session.execute(
                select(Activity, Account)
                .join(Account, Account.id == Activity.account_id)
                .where(Activity.id.in_(sorted(set(activity_row_ids))))
            )
            for activity, account in rows:
                if account.paused:
                    continue
                snapshot = ActivitySnapshot(
                    activity.id,
                    activity.activity_uri,
                    activity.activity_type,
                    activity.account_id,
                    activity.post_id,
                    activity.created_at,
                    activity.document,
                )
                key = active_key(account, "rsa")
                prepared = PreparedActivity.build(
                    activity.id,
                    activity.document,
                    self.urls.account(account.handle).rsa_key,
                    load_rsa_private_key(key.private_pem),
                )
                activities[activity.id] = _Activity(snapshot, prepared)
        if not activities:
            return None
        return _Run(activities, utcnow())

    async def _claim(
        self, activity_ids: list[int], limit: int, after_id: int, skipped: list[str]
    ) -> list[ClaimedDelivery]:
        lease_seconds = self.settings.delivery_lease_seconds

        def claim(connection: SyncExecutor) -> tuple[list[ClaimedDelivery], dict[str, HostHealth]]:
            claimed = claim_due_sync(
                connection,
                activity_ids,
                limit=limit,
                lease_seconds=lease_seconds,
                now=utcnow(),
                after_id=after_id,
                skip_hosts=skipped,
            )
            if not claimed:
                return claimed, {}
            return claimed, load_host_health_sync(connection, {item.host for item in claimed})

        claimed, known = await self.transactions.run(claim)
        if claimed:
            self.hosts.refresh(known, {delivery.host for delivery in claimed})
        return claimed

    async def _deliver_one(
        self,
        run: _Run,
        activity: _Activity,
        delivery: ClaimedDelivery,
        headers: dict[str, str] | None,
    ) -> None:
        host = delivery.host
        await self.host_slots.acquire(host)
        try:
            now = utcnow()
            if now >= delivery.lease_expires_at - self.lease_margin:
                # Waited so long for a slot that the lease could lapse mid-request and another
                # worker could post it too: hand it back instead.
                self.writer.add(self._deferred(delivery, now + timedelta(seconds=1)), run)
                return
            decision, health = self.hosts.admit(host, now)
            if decision is Admission.WAIT:
                until = health.breaker_open_until or now + timedelta(seconds=1)
                self.writer.add(self._deferred(delivery, until), run)
                return
            if decision is Admission.PARKED:
                self.writer.add(self._deferred(delivery, now, state="parked"), run)
                return
            result = await self._attempt(activity, delivery, headers)
        finally:
            self.host_slots.release(host)
        outcome = self._judge(run, activity, delivery, result, probe=decision is Admission.PROBE)
        self.writer.add(outcome, run)

    async def _attempt(
        self, activity: _Activity, delivery: ClaimedDelivery, headers: dict[str, str] | None
    ) -> AttemptResult:
        if delivery.mastodon_target_id is not None:
            if self.mastodon is None:
                return AttemptResult(
                    Verdict.TRANSIENT, None, "no Mastodon client here", 0, host_answered=False
                )
            try:
                return await self.mastodon.deliver(activity.snapshot, delivery)
            except Exception as error:  # a bug must not lose the delivery: retry it
                log.exception("Mastodon delivery %s failed", delivery.id)
                return AttemptResult(
                    Verdict.TRANSIENT,
                    None,
                    f"internal error: {error}"[:500],
                    0,
                    host_answered=False,
                )
        assert activity.prepared is not None
        posted = await self.poster.post(delivery.inbox, activity.prepared, headers)
        if posted.forbidden:
            return AttemptResult(
                Verdict.PERMANENT, None, posted.error, posted.duration_ms, host_answered=False
            )
        if posted.status is None:
            return AttemptResult(
                Verdict.TRANSIENT, None, posted.error, posted.duration_ms, host_answered=False
            )
        return AttemptResult(
            classify_status(posted.status),
            posted.status,
            posted.error,
            posted.duration_ms,
            retry_after_seconds=parse_retry_after(posted.retry_after, utcnow()),
        )

    def _deferred(self, delivery: ClaimedDelivery, until: datetime, state: str = "") -> Outcome:
        return Outcome(
            delivery_id=delivery.id,
            host=delivery.host,
            inbox=delivery.inbox,
            ordering_key=delivery.ordering_key,
            state=state or ("retrying" if delivery.attempts else "pending"),
            attempts=delivery.attempts,
            next_attempt_at=until,
        )

    def _judge(
        self,
        run: _Run,
        activity: _Activity,
        delivery: ClaimedDelivery,
        result: AttemptResult,
        *,
        probe: bool = False,
    ) -> Outcome:
        now = utcnow()
        if result.defer_until is not None:
            return self._deferred(delivery, result.defer_until)
        run.attempted += 1
        attempts = delivery.attempts + 1
        outcome = Outcome(
            delivery_id=delivery.id,
            host=delivery.host,
            inbox=delivery.inbox,
            ordering_key=delivery.ordering_key,
            state="delivered",
            attempts=attempts,
            next_attempt_at=now,
            attempted_at=now,
            status=result.status,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        if result.verdict is Verdict.TRANSIENT:
            health = self.hosts.failed(delivery.host, now, probe=probe)
            self.writer.host_changed(delivery.host, health, result.error)
            delay = self.schedule.next_delay(
                attempts, self.rng.random(), result.retry_after_seconds
            )
            if delay is None:
                outcome.state = "dead"
                outcome.error = f"retries exhausted; last error: {result.error}"
            elif health.unavailable:
                outcome.state = "parked"
            else:
                outcome.state = "retrying"
                outcome.next_attempt_at = now + timedelta(seconds=delay)
        else:
            if result.host_answered and self.hosts.succeeded(delivery.host):
                self.writer.host_changed(delivery.host, HEALTHY, None)
            if result.verdict is Verdict.DELIVERED:
                created_at = activity.snapshot.created_at
                outcome.latency_ms = int((now - created_at).total_seconds() * 1000)
            else:
                outcome.state = "dead"
                outcome.gone = (
                    result.verdict is Verdict.GONE and delivery.mastodon_target_id is None
                )
        if outcome.state in ("delivered", "dead") and delivery.ordering_key:
            run.finished_keys.add(delivery.ordering_key)
        return outcome

    async def _wake_later_work(self, run: _Run) -> None:
        """Schedule the activities' next retries (one job, at the earliest) and wake the
        activities that waited on them."""
        activity_ids = sorted(run.activities)
        async with self.database.engine.connect() as connection:
            wakes = await next_wake_times(connection, activity_ids, run.started_at)
            successors = await waiting_successors(
                connection, activity_ids[0], sorted(run.finished_keys)
            )
        if self.queue is None:
            return
        if wakes:
            wake = min(wakes.values())
            await enqueue_fanout(
                self.queue, sorted(wakes), reason=f"at:{wake.timestamp():.1f}", defer_until=wake
            )
        if successors:
            await enqueue_fanout(self.queue, successors, reason=f"after:{activity_ids[0]}")

    # -- the safety net ----------------------------------------------------------------

    async def sweep(self) -> int:
        """Enqueue every activity that has claimable deliveries (lost jobs, expired leases,
        retries whose wake-up job vanished).

        The job id changes every minute: a worker killed mid-job leaves its job id taken in
        Redis until arq's job timeout passes, and that must not hold the activity back. Two
        jobs for one activity are harmless (claims are atomic); the per-minute id only keeps
        a backlog from filling up with copies."""
        now = utcnow()
        async with self.database.engine.connect() as connection:
            activity_ids = await due_activity_ids(connection, now, SWEEP_LIMIT)
        if self.queue is None:
            return 0
        minute = int(now.timestamp()) // 60
        return await enqueue_fanout(self.queue, activity_ids, reason=f"sweep:{minute}")
