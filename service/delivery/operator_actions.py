"""The delivery record for operators: queue status, dead letters, retry and discard.

Shared by the admin API and the `fedirelay queue` commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Account, Activity, Delivery, DeliveryAttempt, DestinationHost
from service.publishing.activity_records import enqueue_fanout
from service.runtime.job_queue import JobQueue

RETRYABLE_STATES = ("dead", "parked", "discarded", "retrying", "pending")
DISCARDABLE_STATES = ("dead", "parked", "retrying", "pending")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which deliveries an operation applies to: ids, a host, or every dead letter."""

    delivery_ids: Sequence[int] = ()
    host: str | None = None
    all_dead: bool = False

    def condition(self, default_states: Sequence[str]) -> ColumnElement[bool]:
        if self.delivery_ids:
            return Delivery.id.in_(list(self.delivery_ids)) & Delivery.state.in_(default_states)
        if self.host is not None:
            return (Delivery.host == self.host.lower()) & Delivery.state.in_(("dead", "parked"))
        if self.all_dead:
            return Delivery.state == "dead"
        raise ValueError("nothing selected")


def delivery_json(
    delivery: Delivery, attempts: Sequence[DeliveryAttempt] | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": delivery.id,
        "activity_id": delivery.activity_id,
        "account_id": delivery.account_id,
        "inbox": delivery.inbox,
        "host": delivery.host,
        "mastodon_target_id": delivery.mastodon_target_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at)
        if delivery.state in ("pending", "retrying")
        else None,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "latency_ms": delivery.latency_ms,
        "created_at": _iso(delivery.created_at),
        "delivered_at": _iso(delivery.delivered_at),
    }
    if attempts is not None:
        record["attempt_history"] = [
            {
                "attempted_at": _iso(a.attempted_at),
                "status": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ]
    return record


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


async def queue_status(session: AsyncSession) -> dict[str, Any]:
    now = datetime.now(UTC)
    counts = {
        state: count
        for state, count in await session.execute(
            select(Delivery.state, func.count()).group_by(Delivery.state)
        )
    }
    due = await session.scalar(
        select(func.count()).where(
            Delivery.state.in_(("pending", "retrying")), Delivery.next_attempt_at <= now
        )
    )
    oldest_due = await session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.state.in_(("pending", "retrying")), Delivery.next_attempt_at <= now
        )
    )
    hosts = (
        await session.execute(
            select(
                DestinationHost.host,
                DestinationHost.health,
                DestinationHost.paused,
                DestinationHost.consecutive_failures,
                DestinationHost.last_error,
            )
            .where((DestinationHost.health != "ok") | DestinationHost.paused.is_(True))
            .order_by(DestinationHost.host)
            .limit(200)
        )
    ).all()
    return {
        "states": {state: counts.get(state, 0) for state in _ALL_STATES},
        "due_now": int(due or 0),
        "oldest_due_seconds": (now - oldest_due).total_seconds() if oldest_due else None,
        "troubled_hosts": [
            {
                "host": host,
                "health": health,
                "paused": paused,
                "consecutive_failures": failures,
                "last_error": error,
            }
            for host, health, paused, failures, error in hosts
        ],
    }


_ALL_STATES = ("pending", "in_flight", "delivered", "retrying", "parked", "dead", "discarded")


async def list_dead_letters(
    session: AsyncSession,
    *,
    account_handle: str | None = None,
    activity_id: int | None = None,
    post_id: int | None = None,
    host: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    query = select(Delivery).where(Delivery.state == "dead")
    if account_handle is not None:
        query = query.join(Account, Account.id == Delivery.account_id).where(
            Account.handle == account_handle
        )
    if activity_id is not None:
        query = query.where(Delivery.activity_id == activity_id)
    if post_id is not None:
        query = query.join(Activity, Activity.id == Delivery.activity_id).where(
            Activity.post_id == post_id
        )
    if host is not None:
        query = query.where(Delivery.host == host.lower())
    if before_id is not None:
        query = query.where(Delivery.id < before_id)
    deliveries = (await session.scalars(query.order_by(Delivery.id.desc()).limit(limit))).all()
    history = await _attempts_of(session, [d.id for d in deliveries])
    return [delivery_json(d, history.get(d.id, [])) for d in deliveries]


async def _attempts_of(
    session: AsyncSession, delivery_ids: Sequence[int]
) -> dict[int, list[DeliveryAttempt]]:
    found: dict[int, list[DeliveryAttempt]] = {}
    for start in range(0, len(delivery_ids), 500):
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(delivery_ids[start : start + 500]))
            .order_by(DeliveryAttempt.id)
        )
        for attempt in rows:
            found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


async def activity_record(session: AsyncSession, activity: Activity) -> dict[str, Any]:
    """Per-inbox state of one activity, with every attempt."""
    deliveries = (
        await session.scalars(
            select(Delivery).where(Delivery.activity_id == activity.id).order_by(Delivery.id)
        )
    ).all()
    history = await _attempts_of(session, [d.id for d in deliveries])
    states: dict[str, int] = {}
    for delivery in deliveries:
        states[delivery.state] = states.get(delivery.state, 0) + 1
    latencies = sorted(d.latency_ms for d in deliveries if d.latency_ms is not None)
    return {
        "activity_id": activity.id,
        "activity_uri": activity.activity_uri,
        "type": activity.activity_type,
        "post_id": activity.post_id,
        "created_at": _iso(activity.created_at),
        "states": states,
        "last_delivered_latency_ms": latencies[-1] if latencies else None,
        "deliveries": [delivery_json(d, history.get(d.id, [])) for d in deliveries],
    }


async def retry_deliveries(session: AsyncSession, selection: Selection) -> list[int]:
    """Start the schedule again for the selected deliveries; return activity ids to wake."""
    result = await session.execute(
        update(Delivery)
        .where(selection.condition(RETRYABLE_STATES))
        .values(
            state="pending", attempts=0, next_attempt_at=datetime.now(UTC), lease_expires_at=None
        )
        .returning(Delivery.activity_id)
        .execution_options(synchronize_session=False)
    )
    return sorted({row[0] for row in result})


async def discard_deliveries(session: AsyncSession, selection: Selection) -> int:
    result = await session.execute(
        update(Delivery)
        .where(selection.condition(DISCARDABLE_STATES))
        .values(state="discarded", lease_expires_at=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def wake_activities(queue: JobQueue | None, activity_ids: Sequence[int]) -> None:
    if queue is None:
        return
    stamp = int(datetime.now(UTC).timestamp())
    await enqueue_fanout(queue, activity_ids, reason=f"retry:{stamp}")
