"""The delivery rows in the database: claiming due work, writing outcomes back, waking work.

Every statement here works on many deliveries at once: a claim is one UPDATE ... RETURNING,
outcomes are written with one executemany per kind, so the database cost per delivery is a
fraction of a round trip. The hot statements are SQLAlchemy Core built once at import (the
compiled form is cached, no ORM unit of work) and run on a plain connection or a session.

A claim walks one activity's rows in id order from a cursor (index `activity_id, id`), so
claiming an activity's deliveries in small steps costs O(rows) in all, not O(rows²).

A delivery is *claimable* when it is due (pending/retrying with `next_attempt_at` passed,
or in flight with an expired lease after its worker died), its account and host are not
paused, its host is neither unavailable nor cooling off, and no earlier delivery to the same
inbox with the same ordering key is unfinished (so an Update never overtakes its Create).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, aliased

from federation.peers.host_health import HEALTH_UNAVAILABLE, HostHealth
from service.db.models import Account, Delivery, DeliveryAttempt, DestinationHost, Follower

FINISHED_STATES: Final = ("delivered", "dead", "discarded")
WAITING_STATES: Final = ("pending", "retrying")

_Earlier = aliased(Delivery)
_DELIVERIES = cast(Table, Delivery.__table__)
_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)

# A session (admin paths, tests) or a bare connection (the engine's hot path).
Executor = AsyncSession | AsyncConnection
# What the statements run on: every store function is synchronous underneath, so the engine
# can run a whole transaction on a thread of its own (SQLite) or through `run_sync`.
SyncExecutor = Session | Connection


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    activity_id: int
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


def _dialect(executor: SyncExecutor) -> str:
    if isinstance(executor, Connection):
        return executor.dialect.name
    return executor.get_bind().dialect.name


def _due(now: Any, state: Any = Delivery.state) -> ColumnElement[bool]:
    return or_(
        and_(state.in_(WAITING_STATES), Delivery.next_attempt_at <= now),
        and_(state == "in_flight", Delivery.lease_expires_at < now),
    )


def _claimable(now: Any, state: Any = Delivery.state) -> list[ColumnElement[bool]]:
    """`now` is a datetime or a bound parameter standing for one."""
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
        _due(now, state),
        or_(Delivery.ordering_key.is_(None), ~earlier_unfinished),
        ~host_held,
        ~account_paused,
    ]


def _of_activities(column: Any, activity_ids: Sequence[int]) -> ColumnElement[bool]:
    # `=` for the common single activity keeps the plan on the (activity_id, id) index walk.
    if len(activity_ids) == 1:
        return cast(ColumnElement[bool], column == activity_ids[0])
    return cast(ColumnElement[bool], column.in_(list(activity_ids)))


async def park_for_unavailable_hosts(executor: Executor, activity_ids: Sequence[int]) -> int:
    unavailable = select(DestinationHost.host).where(DestinationHost.health == HEALTH_UNAVAILABLE)
    result = await executor.execute(
        update(_DELIVERIES)
        .where(
            _of_activities(_DELIVERIES.c.activity_id, activity_ids),
            _DELIVERIES.c.state.in_(WAITING_STATES),
            _DELIVERIES.c.host.in_(unavailable),
        )
        .values(state="parked", lease_expires_at=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_due_sync(
    executor: SyncExecutor,
    activity_ids: Sequence[int],
    *,
    limit: int,
    lease_seconds: float,
    now: datetime,
    after_id: int = 0,
    skip_hosts: Sequence[str] = (),
) -> list[ClaimedDelivery]:
    """Mark up to `limit` claimable deliveries of the activities with an id above `after_id`
    in flight, in one statement, lowest ids first. Deliveries to `skip_hosts` are left alone
    (their hosts already have enough work in this process)."""
    lease_until = now + timedelta(seconds=lease_seconds)
    dialect = _dialect(executor)
    statement = _claim_statement(dialect, len(activity_ids) > 1, bool(skip_hosts), after_id > 0)
    result = executor.execute(
        statement,
        {
            "c_activities": list(activity_ids),
            "c_activity": activity_ids[0],
            "c_now": now,
            "c_after": after_id,
            "c_skip": list(skip_hosts),
            "c_limit": limit,
            "c_lease_until": lease_until,
        },
    )
    claimed = [
        ClaimedDelivery(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], lease_until)
        for row in result
    ]
    claimed.sort(key=lambda item: item.id)
    return claimed


# Claims are built once per shape with bound parameters: building the statement afresh, with
# the activity ids as literal values, cost more Python per claim than SQLite spent running it
# (every claim also walked the values again for the compiled-statement cache key).
_CLAIM_STATEMENTS: dict[tuple[str, bool, bool, bool], Any] = {}
_NOW = bindparam("c_now", type_=_DELIVERIES.c.next_attempt_at.type)
_ACTIVITY_IDS = bindparam("c_activities", expanding=True)


def _claim_statement(
    dialect: str, many_activities: bool, skipping_hosts: bool, from_cursor: bool
) -> Any:
    key = (dialect, many_activities, skipping_hosts, from_cursor)
    statement = _CLAIM_STATEMENTS.get(key)
    if statement is None:
        statement = _CLAIM_STATEMENTS[key] = _build_claim(*key)
    return statement


def _build_claim(
    dialect: str, many_activities: bool, skipping_hosts: bool, from_cursor: bool
) -> Any:
    if dialect == "sqlite" and many_activities:
        conditions = _walk_by_id(_NOW, from_cursor)
    else:
        activities = (
            Delivery.activity_id.in_(_ACTIVITY_IDS)
            if many_activities
            else Delivery.activity_id == bindparam("c_activity")
        )
        # `=` for the common single activity keeps the plan on the (activity_id, id) walk.
        conditions = [activities, *_claimable(_NOW), Delivery.id > bindparam("c_after")]
    if skipping_hosts:
        conditions.append(Delivery.host.not_in(bindparam("c_skip", expanding=True)))
    candidates = (
        select(Delivery.id).where(*conditions).order_by(Delivery.id).limit(bindparam("c_limit"))
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=Delivery)
    columns = _DELIVERIES.c
    return (
        update(_DELIVERIES)
        .where(columns.id.in_(candidates.scalar_subquery()))
        .values(
            state="in_flight",
            lease_expires_at=bindparam("c_lease_until", type_=columns.lease_expires_at.type),
        )
        .returning(
            columns.id,
            columns.activity_id,
            columns.inbox,
            columns.host,
            columns.ordering_key,
            columns.attempts,
            columns.mastodon_target_id,
            columns.created_at,
        )
    )


_First = aliased(Delivery)


def _walk_by_id(now: Any, from_cursor: bool) -> list[ColumnElement[bool]]:
    """Conditions for claiming several activities' rows on SQLite by walking the table in id
    order from the first of their rows, stopping at the claim's size.

    Left to itself, SQLite answers `activity_id IN (...)` with the due-state index: it reads
    and sorts every due row of the table at every claim, which made claims of a multi-activity
    job cost several times those of single-activity jobs. The `+ 0` and `|| ''` keep it off
    the activity and state indexes, so the only plan left is the id walk; a job's activities
    were published together, so their rows lie close to one another.

    The walk starts at the job's first row or, once it has claimed, just after the cursor (a
    row of the job): never both bounds, for SQLite would start its walk at the first row
    every time and test every row before the cursor again."""
    if from_cursor:
        start = Delivery.id > bindparam("c_after")
    else:
        first = select(func.min(_First.id)).where(_First.activity_id.in_(_ACTIVITY_IDS))
        start = Delivery.id >= first.scalar_subquery()
    return [
        (Delivery.activity_id + 0).in_(_ACTIVITY_IDS),
        start,
        *_claimable(now, Delivery.state + ""),
    ]


_HOST_HEALTH = select(
    DestinationHost.host,
    DestinationHost.consecutive_failures,
    DestinationHost.failure_days,
    DestinationHost.breaker_open_until,
    DestinationHost.health,
).where(DestinationHost.host.in_(bindparam("h_hosts", expanding=True)))


def load_host_health_sync(executor: SyncExecutor, hosts: Iterable[str]) -> dict[str, HostHealth]:
    """Stored health of these hosts; only hosts with a row (ever failed, or paused) appear."""
    names = sorted(set(hosts))
    found: dict[str, HostHealth] = {}
    for start in range(0, len(names), 500):
        rows = executor.execute(_HOST_HEALTH, {"h_hosts": names[start : start + 500]})
        for host, failures, days, open_until, health in rows:
            found[host] = HostHealth(
                consecutive_failures=failures,
                failure_days=tuple(days or ()),
                breaker_open_until=open_until,
                unavailable=health == HEALTH_UNAVAILABLE,
            )
    return found


_MARK_DELIVERED = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"))
    .values(
        state="delivered",
        attempts=bindparam("b_attempts"),
        lease_expires_at=None,
        last_status=bindparam("b_status"),
        last_error=None,
        latency_ms=bindparam("b_latency"),
        delivered_at=bindparam("b_at", type_=_DELIVERIES.c.delivered_at.type),
    )
)
_MARK_OTHER = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next", type_=_DELIVERIES.c.next_attempt_at.type),
        lease_expires_at=None,
        last_status=bindparam("b_status"),
        last_error=bindparam("b_error"),
    )
)
_RECORD_ATTEMPT = insert(_ATTEMPTS)


def write_outcomes_sync(
    executor: SyncExecutor,
    outcomes: Sequence[Outcome],
    host_changes: dict[str, tuple[HostHealth, str | None, datetime]],
) -> None:
    """Store outcomes, attempt history and changed host health in a few bulk statements."""
    delivered = [
        {
            "b_id": o.delivery_id,
            "b_attempts": o.attempts,
            "b_status": o.status,
            "b_latency": o.latency_ms,
            "b_at": o.attempted_at,
        }
        for o in outcomes
        if o.state == "delivered"
    ]
    other = [
        {
            "b_id": o.delivery_id,
            "b_state": o.state,
            "b_attempts": o.attempts,
            "b_next": o.next_attempt_at,
            "b_status": o.status,
            "b_error": o.error,
        }
        for o in outcomes
        if o.state != "delivered"
    ]
    if delivered:
        executor.execute(_MARK_DELIVERED, delivered)
    if other:
        executor.execute(_MARK_OTHER, other)
    attempts = [
        {
            "delivery_id": o.delivery_id,
            "attempted_at": o.attempted_at,
            "status_code": o.status,
            "error": o.error,
            "duration_ms": o.duration_ms,
        }
        for o in outcomes
        if o.attempted_at is not None
    ]
    if attempts:
        executor.execute(_RECORD_ATTEMPT, attempts)
    gone = sorted({o.inbox for o in outcomes if o.gone})
    if gone:
        _remove_followers_using(executor, gone)
    if host_changes:
        _save_host_health(executor, host_changes)
        for host, (health, _, now) in host_changes.items():
            if health.unavailable:
                _park_host(executor, host)
            elif health.consecutive_failures == 0:
                _unpark_host(executor, host, now)


def _remove_followers_using(executor: SyncExecutor, inboxes: Sequence[str]) -> int:
    result = executor.execute(
        delete(Follower).where(or_(Follower.inbox.in_(inboxes), Follower.shared_inbox.in_(inboxes)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def save_host_health(
    executor: Executor, changes: dict[str, tuple[HostHealth, str | None, datetime]]
) -> None:
    await executor.run_sync(_save_host_health, changes)


def _save_host_health(
    executor: SyncExecutor, changes: dict[str, tuple[HostHealth, str | None, datetime]]
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
    dialect = _dialect(executor)
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
        executor.execute(statement.on_conflict_do_update(index_elements=["host"], set_=values))


def _park_host(executor: SyncExecutor, host: str) -> None:
    executor.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.host == host, _DELIVERIES.c.state.in_(WAITING_STATES))
        .values(state="parked")
    )


async def unpark_host(executor: Executor, host: str, now: datetime) -> list[int]:
    """Make the host's parked deliveries due again; return their activity ids to wake."""
    return await executor.run_sync(_unpark_host, host, now)


def _unpark_host(executor: SyncExecutor, host: str, now: datetime) -> list[int]:
    result = executor.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.host == host, _DELIVERIES.c.state == "parked")
        .values(state="pending", next_attempt_at=now)
        .returning(_DELIVERIES.c.activity_id)
    )
    return sorted({row[0] for row in result})


async def due_activity_ids(executor: Executor, now: datetime, limit: int) -> list[int]:
    """Activities with claimable deliveries (for the sweeper)."""
    rows = await executor.execute(
        select(Delivery.activity_id)
        .where(*_claimable(now))
        .group_by(Delivery.activity_id)
        .order_by(Delivery.activity_id)
        .limit(limit)
    )
    return [row[0] for row in rows]


async def next_wake_times(
    executor: Executor, activity_ids: Sequence[int], scheduled_after: datetime
) -> dict[int, datetime]:
    """Per activity, the earliest retry scheduled at or after `scheduled_after`."""
    rows = await executor.execute(
        select(Delivery.activity_id, func.min(Delivery.next_attempt_at))
        .where(
            _of_activities(Delivery.activity_id, activity_ids),
            Delivery.state.in_(WAITING_STATES),
            Delivery.next_attempt_at >= scheduled_after,
        )
        .group_by(Delivery.activity_id)
    )
    return {int(activity_id): at for activity_id, at in rows if at is not None}


async def waiting_successors(
    executor: Executor, activity_id: int, ordering_keys: Sequence[str]
) -> list[int]:
    """Activities after `activity_id` about the same objects whose deliveries may have waited
    for the ones finished with these ordering keys."""
    if not ordering_keys:
        return []
    rows = await executor.execute(
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
