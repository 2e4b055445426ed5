"""The delivery rows in the database: claiming due work, writing outcomes back, waking work.

Every statement here works on many deliveries at once: a claim is one UPDATE ... RETURNING,
outcomes are written with one executemany per kind, so the database cost per delivery is a
fraction of a round trip.

A delivery is *claimable* when it is due (pending/retrying with `next_attempt_at` passed,
or in flight with an expired lease after its worker died), its account and host are not
paused, its host is neither unavailable nor cooling off, and no earlier delivery to the same
inbox with the same ordering key is unfinished (so an Update never overtakes its Create).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from federation.host_health import HEALTH_UNAVAILABLE, HostHealth
from service.db.models import Account, Delivery, DeliveryAttempt, DestinationHost, Follower

FINISHED_STATES: Final = ("delivered", "dead", "discarded")
WAITING_STATES: Final = ("pending", "retrying")

_Earlier = aliased(Delivery)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    inbox: str
    host: str
    ordering_key: str | None
    attempts: int
    mastodon_target_id: int | None
    created_at: datetime
    lease_expires_at: datetime


@dataclass(slots=True)
class Outcome:
    """What happened to one claimed delivery; written back in bulk."""

    delivery_id: int
    host: str
    inbox: str
    ordering_key: str | None
    state: str  # delivered | retrying | pending | parked | dead
    attempts: int
    next_attempt_at: datetime
    attempted_at: datetime | None = None  # None: not attempted (deferred), no history row
    status: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    latency_ms: int | None = None
    gone: bool = False


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Delivery.state.in_(WAITING_STATES), Delivery.next_attempt_at <= now),
        and_(Delivery.state == "in_flight", Delivery.lease_expires_at < now),
    )


def _claimable(now: datetime) -> list[ColumnElement[bool]]:
    earlier_unfinished = exists().where(
        _Earlier.inbox == Delivery.inbox,
        _Earlier.ordering_key == Delivery.ordering_key,
        _Earlier.id < Delivery.id,
        _Earlier.state.not_in(FINISHED_STATES),
    )
    host_held = exists().where(
        DestinationHost.host == Delivery.host,
        or_(
            DestinationHost.paused.is_(True),
            DestinationHost.health == HEALTH_UNAVAILABLE,
            DestinationHost.breaker_open_until > now,
        ),
    )
    account_paused = exists().where(Account.id == Delivery.account_id, Account.paused.is_(True))
    return [
        _due(now),
        or_(Delivery.ordering_key.is_(None), ~earlier_unfinished),
        ~host_held,
        ~account_paused,
    ]


async def park_for_unavailable_hosts(session: AsyncSession, activity_id: int) -> int:
    unavailable = select(DestinationHost.host).where(DestinationHost.health == HEALTH_UNAVAILABLE)
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.activity_id == activity_id,
            Delivery.state.in_(WAITING_STATES),
            Delivery.host.in_(unavailable),
        )
        .values(state="parked", lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due(
    session: AsyncSession,
    activity_id: int,
    *,
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[ClaimedDelivery]:
    """Mark up to `limit` claimable deliveries of the activity in flight, in one statement."""
    lease_until = now + timedelta(seconds=lease_seconds)
    candidates = (
        select(Delivery.id)
        .where(Delivery.activity_id == activity_id, *_claimable(now))
        .order_by(Delivery.id)
        .limit(limit)
    )
    if _dialect(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=Delivery)
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(candidates.scalar_subquery()))
        .values(state="in_flight", lease_expires_at=lease_until)
        .returning(
            Delivery.id,
            Delivery.inbox,
            Delivery.host,
            Delivery.ordering_key,
            Delivery.attempts,
            Delivery.mastodon_target_id,
            Delivery.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = [
        ClaimedDelivery(row[0], row[1], row[2], row[3], row[4], row[5], row[6], lease_until)
        for row in result
    ]
    claimed.sort(key=lambda item: item.id)
    return claimed


async def load_host_health(session: AsyncSession, hosts: Iterable[str]) -> dict[str, HostHealth]:
    names = sorted(set(hosts))
    found: dict[str, HostHealth] = {}
    for start in range(0, len(names), 500):
        rows = await session.execute(
            select(
                DestinationHost.host,
                DestinationHost.consecutive_failures,
                DestinationHost.failure_days,
                DestinationHost.breaker_open_until,
                DestinationHost.health,
            ).where(DestinationHost.host.in_(names[start : start + 500]))
        )
        for host, failures, days, open_until, health in rows:
            found[host] = HostHealth(
                consecutive_failures=failures,
                failure_days=tuple(days or ()),
                breaker_open_until=open_until,
                unavailable=health == HEALTH_UNAVAILABLE,
            )
    return found


async def write_outcomes(
    session: AsyncSession,
    outcomes: Sequence[Outcome],
    host_changes: dict[str, tuple[HostHealth, str | None, datetime]],
) -> None:
    """Store outcomes, attempt history and changed host health in a few bulk statements."""
    delivered = [o for o in outcomes if o.state == "delivered"]
    other = [o for o in outcomes if o.state != "delivered"]
    if delivered:
        await session.execute(
            update(Delivery),
            [
                {
                    "id": o.delivery_id,
                    "state": "delivered",
                    "attempts": o.attempts,
                    "lease_expires_at": None,
                    "last_status": o.status,
                    "last_error": None,
                    "latency_ms": o.latency_ms,
                    "delivered_at": o.attempted_at,
                }
                for o in delivered
            ],
        )
    if other:
        await session.execute(
            update(Delivery),
            [
                {
                    "id": o.delivery_id,
                    "state": o.state,
                    "attempts": o.attempts,
                    "next_attempt_at": o.next_attempt_at,
                    "lease_expires_at": None,
                    "last_status": o.status,
                    "last_error": o.error,
                }
                for o in other
            ],
        )
    attempts = [o for o in outcomes if o.attempted_at is not None]
    if attempts:
        await session.execute(
            insert(DeliveryAttempt),
            [
                {
                    "delivery_id": o.delivery_id,
                    "attempted_at": o.attempted_at,
                    "status_code": o.status,
                    "error": o.error,
                    "duration_ms": o.duration_ms,
                }
                for o in attempts
            ],
        )
    gone = sorted({o.inbox for o in outcomes if o.gone})
    if gone:
        await remove_followers_using(session, gone)
    if host_changes:
        await save_host_health(session, host_changes)
        for host, (health, _, now) in host_changes.items():
            if health.unavailable:
                await park_host(session, host)
            elif health.consecutive_failures == 0:
                await unpark_host(session, host, now)


async def remove_followers_using(session: AsyncSession, inboxes: Sequence[str]) -> int:
    result = await session.execute(
        delete(Follower).where(or_(Follower.inbox.in_(inboxes), Follower.shared_inbox.in_(inboxes)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def save_host_health(
    session: AsyncSession, changes: dict[str, tuple[HostHealth, str | None, datetime]]
) -> None:
    rows: list[dict[str, Any]] = []
    for host, (health, error, now) in sorted(changes.items()):
        failing = health.consecutive_failures > 0
        rows.append(
            {
                "host": host,
                "health": health.label,
                "consecutive_failures": health.consecutive_failures,
                "failure_days": list(health.failure_days),
                "breaker_open_until": health.breaker_open_until,
                "last_error": error if failing else None,
                "failing_since": now if failing else None,
                "last_success_at": None if failing else now,
            }
        )
    dialect = _dialect(session)
    builder: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for row in rows:
        statement = builder(DestinationHost).values(paused=False, attempts=0, **row)
        excluded = statement.excluded
        values: dict[str, Any] = {
            "health": excluded.health,
            "consecutive_failures": excluded.consecutive_failures,
            "failure_days": excluded.failure_days,
            "breaker_open_until": excluded.breaker_open_until,
            "last_error": excluded.last_error,
            # The first failure of a streak dates it; later failures keep that date.
            "failing_since": func.coalesce(DestinationHost.failing_since, excluded.failing_since)
            if row["failing_since"] is not None
            else None,
        }
        if row["last_success_at"] is not None:
            values["last_success_at"] = excluded.last_success_at
        await session.execute(statement.on_conflict_do_update(index_elements=["host"], set_=values))


async def park_host(session: AsyncSession, host: str) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.host == host, Delivery.state.in_(WAITING_STATES))
        .values(state="parked")
        .execution_options(synchronize_session=False)
    )


async def unpark_host(session: AsyncSession, host: str, now: datetime) -> list[int]:
    """Make the host's parked deliveries due again; return their activity ids to wake."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.host == host, Delivery.state == "parked")
        .values(state="pending", next_attempt_at=now)
        .returning(Delivery.activity_id)
        .execution_options(synchronize_session=False)
    )
    return sorted({row[0] for row in result})


async def due_activity_ids(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Activities with claimable deliveries (for the sweeper)."""
    rows = await session.execute(
        select(Delivery.activity_id)
        .where(*_claimable(now))
        .group_by(Delivery.activity_id)
        .order_by(Delivery.activity_id)
        .limit(limit)
    )
    return [row[0] for row in rows]


async def next_wake_time(
    session: AsyncSession, activity_id: int, scheduled_after: datetime
) -> datetime | None:
    """The earliest retry this activity has that was scheduled at or after `scheduled_after`."""
    value = await session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.activity_id == activity_id,
            Delivery.state.in_(WAITING_STATES),
            Delivery.next_attempt_at >= scheduled_after,
        )
    )
    return value


async def waiting_successors(
    session: AsyncSession, activity_id: int, ordering_keys: Sequence[str]
) -> list[int]:
    """Later activities about the same objects whose deliveries may have waited for this one."""
    if not ordering_keys:
        return []
    rows = await session.execute(
        select(Delivery.activity_id)
        .where(
            Delivery.state.in_(WAITING_STATES),
            Delivery.ordering_key.in_(ordering_keys),
            Delivery.activity_id > activity_id,
        )
        .group_by(Delivery.activity_id)
        .limit(100)
    )
    return [row[0] for row in rows]
