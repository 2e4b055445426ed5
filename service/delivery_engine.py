"""The fan-out engine: one job per activity, an asyncio pool inside it.

A job claims its activity's due deliveries in batches, signs and posts each (the body and
its digest are built once per activity; the RSA signature is the only per-delivery CPU
work), and writes outcomes back in bulk from a buffer flushed every few hundred results or
fractions of a second. Concurrency is bounded per process and per destination host; a
delivery waits for its host's slot before it takes a global one, so a slow server holds at
most its own slots and cannot starve the others.

At-least-once: a delivery is marked in flight with a lease before it is posted, and its
outcome is committed after. A worker killed in between leaves rows in flight; once their
lease expires the sweeper hands them to another worker, which posts them again. The
duplicates a kill can cause are therefore at most the deliveries in flight at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from federation.host_health import HEALTHY, Admission, HostHealth, HostPolicy
from federation.keys import load_rsa_private_key
from federation.retry_schedule import RetrySchedule, Verdict, classify_status, parse_retry_after
from federation.urls import InstanceUrls
from service.account_store import active_key
from service.db.engine import Database
from service.db.models import Account, Activity
from service.delivery_store import (
    ClaimedDelivery,
    Outcome,
    claim_due,
    due_activity_ids,
    load_host_health,
    next_wake_time,
    park_for_unavailable_hosts,
    waiting_successors,
    write_outcomes,
)
from service.delivery_tracking import HostHealthTracker, HostSlots
from service.delivery_transport import TOTAL_TIMEOUT, InboxPoster, PreparedActivity
from service.job_queue import JobQueue
from service.publishing import FANOUT_TASK
from service.settings import Settings

log = logging.getLogger(__name__)

FLUSH_SIZE = 200
FLUSH_INTERVAL = 0.2
SWEEP_LIMIT = 1000


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
    """Buffers outcomes and host changes of every job in the process; one transaction per
    flush, so concurrent jobs share write transactions instead of competing for them."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._outcomes: list[Outcome] = []
        self._hosts: dict[str, tuple[HostHealth, str | None, datetime]] = {}
        self._lock = asyncio.Lock()
        self._pending_flushes: set[asyncio.Task[None]] = set()
        self.flushes = 0

    def add(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        if len(self._outcomes) >= FLUSH_SIZE and not self._lock.locked():
            task = asyncio.create_task(self.flush())
            self._pending_flushes.add(task)
            task.add_done_callback(self._pending_flushes.discard)

    def host_changed(self, host: str, health: HostHealth, error: str | None) -> None:
        self._hosts[host] = (health, error, utcnow())

    async def flush(self) -> None:
        async with self._lock:
            if not self._outcomes and not self._hosts:
                return
            outcomes, self._outcomes = self._outcomes, []
            hosts, self._hosts = self._hosts, {}
            for attempt in range(5):
                try:
                    async with self.database.transaction() as session:
                        await write_outcomes(session, outcomes, hosts)
                    self.flushes += 1
                    return
                except Exception:  # a lost outcome costs a duplicate, so retry hard
                    log.exception("writing %d delivery outcomes failed", len(outcomes))
                    await asyncio.sleep(0.2 * (attempt + 1))
            log.error("gave up writing %d outcomes; their leases will expire", len(outcomes))

    async def run_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()


@dataclass(slots=True)
class _Job:
    activity: ActivitySnapshot
    prepared: PreparedActivity | None
    writer: OutcomeWriter
    started_at: datetime
    finished_keys: set[str] = field(default_factory=set)
    attempted: int = 0


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
        self.global_slots = asyncio.Semaphore(settings.delivery_concurrency)
        self.lease_margin = timedelta(
            seconds=min(TOTAL_TIMEOUT + 5.0, settings.delivery_lease_seconds / 2)
        )
        self.rng = rng or random.Random()
        self.writer = OutcomeWriter(database)
        self._flusher: asyncio.Task[None] | None = None

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self.writer.run_periodically())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.writer.flush()

    # -- one activity ------------------------------------------------------------------

    async def deliver_activity(self, activity_row_id: int) -> int:
        """Attempt every claimable delivery of the activity; return how many were attempted."""
        job = await self._load(activity_row_id)
        if job is None:
            return 0
        self._ensure_flusher()
        tasks: set[asyncio.Task[None]] = set()
        batch = self.settings.delivery_batch_size
        try:
            async with self.database.transaction() as session:
                await park_for_unavailable_hosts(session, activity_row_id)
            while True:
                claimed = await self._claim(job, batch)
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver_one(job, delivery))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if len(claimed) < batch:
                    break
                # Back-pressure: claim more only while the pool has room for it.
                while len(tasks) > batch:
                    await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await job.writer.flush()
        await self._wake_later_work(job)
        return job.attempted

    async def _load(self, activity_row_id: int) -> _Job | None:
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(Activity, Account)
                    .join(Account, Account.id == Activity.account_id)
                    .where(Activity.id == activity_row_id)
                )
            ).first()
            if row is None:
                return None
            activity, account = row
            if account.paused:
                return None
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
        return _Job(snapshot, prepared, self.writer, utcnow())

    async def _claim(self, job: _Job, limit: int) -> list[ClaimedDelivery]:
        now = utcnow()
        async with self.database.transaction() as session:
            claimed = await claim_due(
                session,
                job.activity.id,
                limit=limit,
                lease_seconds=self.settings.delivery_lease_seconds,
                now=now,
            )
            if claimed:
                hosts = {delivery.host for delivery in claimed}
                self.hosts.refresh(await load_host_health(session, hosts), hosts)
        return claimed

    async def _deliver_one(self, job: _Job, delivery: ClaimedDelivery) -> None:
        async with self.host_slots.hold(delivery.host):
            now = utcnow()
            if now >= delivery.lease_expires_at - self.lease_margin:
                # Waited so long for a slot that the lease could lapse mid-request and another
                # worker could post it too: hand it back instead.
                job.writer.add(self._deferred(delivery, now + timedelta(seconds=1)))
                return
            decision, health = self.hosts.admit(delivery.host, now)
            if decision is Admission.WAIT:
                until = health.breaker_open_until or now + timedelta(seconds=1)
                job.writer.add(self._deferred(delivery, until))
                return
            if decision is Admission.PARKED:
                job.writer.add(self._deferred(delivery, now, state="parked"))
                return
            async with self.global_slots:
                result = await self._attempt(job, delivery)
            job.writer.add(self._judge(job, delivery, result))

    async def _attempt(self, job: _Job, delivery: ClaimedDelivery) -> AttemptResult:
        if delivery.mastodon_target_id is not None:
            if self.mastodon is None:
                return AttemptResult(
                    Verdict.TRANSIENT, None, "no Mastodon client here", 0, host_answered=False
                )
            try:
                return await self.mastodon.deliver(job.activity, delivery)
            except Exception as error:  # a bug must not lose the delivery: retry it
                log.exception("Mastodon delivery %s failed", delivery.id)
                return AttemptResult(
                    Verdict.TRANSIENT,
                    None,
                    f"internal error: {error}"[:500],
                    0,
                    host_answered=False,
                )
        assert job.prepared is not None
        posted = await self.poster.post(delivery.inbox, job.prepared)
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

    def _judge(self, job: _Job, delivery: ClaimedDelivery, result: AttemptResult) -> Outcome:
        now = utcnow()
        if result.defer_until is not None:
            return self._deferred(delivery, result.defer_until)
        job.attempted += 1
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
            health = self.hosts.failed(delivery.host, now)
            job.writer.host_changed(delivery.host, health, result.error)
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
                job.writer.host_changed(delivery.host, HEALTHY, None)
            if result.verdict is Verdict.DELIVERED:
                outcome.latency_ms = int((now - job.activity.created_at).total_seconds() * 1000)
            else:
                outcome.state = "dead"
                outcome.gone = (
                    result.verdict is Verdict.GONE and delivery.mastodon_target_id is None
                )
        if outcome.state in ("delivered", "dead") and delivery.ordering_key:
            job.finished_keys.add(delivery.ordering_key)
        return outcome

    async def _wake_later_work(self, job: _Job) -> None:
        """Schedule this activity's next retry and wake activities that waited on it."""
        async with self.database.session() as session:
            wake = await next_wake_time(session, job.activity.id, job.started_at)
            successors = await waiting_successors(
                session, job.activity.id, sorted(job.finished_keys)
            )
        if self.queue is None:
            return
        activity_id = job.activity.id
        if wake is not None:
            await self.queue.enqueue(
                FANOUT_TASK,
                activity_id,
                job_id=f"fanout:{activity_id}:at:{wake.timestamp():.1f}",
                defer_until=wake,
            )
        for successor in successors:
            await self.queue.enqueue(
                FANOUT_TASK, successor, job_id=f"fanout:{successor}:after:{activity_id}"
            )

    # -- the safety net ----------------------------------------------------------------

    async def sweep(self) -> int:
        """Enqueue every activity that has claimable deliveries (lost jobs, expired leases,
        retries whose wake-up job vanished).

        The job id changes every minute: a worker killed mid-job leaves its job id taken in
        Redis until arq's job timeout passes, and that must not hold the activity back. Two
        jobs for one activity are harmless (claims are atomic); the per-minute id only keeps
        a backlog from filling up with copies."""
        now = utcnow()
        async with self.database.session() as session:
            activity_ids = await due_activity_ids(session, now, SWEEP_LIMIT)
        if self.queue is None:
            return 0
        minute = int(now.timestamp()) // 60
        enqueued = 0
        for activity_id in activity_ids:
            job_id = f"fanout:{activity_id}:sweep:{minute}"
            if await self.queue.enqueue(FANOUT_TASK, activity_id, job_id=job_id):
                enqueued += 1
        return enqueued
