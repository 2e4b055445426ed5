"""Operations on destination hosts that other parts of the relay call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from federation.peers.host_health import HEALTHY
from service.db.models import Delivery, DestinationHost
from service.delivery.store import save_host_health, unpark_host


async def mark_host_reachable(session: AsyncSession, host: str) -> list[int]:
    """The host showed a sign of life (a verified activity arrived from it): clear its failure
    record and make its parked deliveries due. Returns the activity ids to wake after commit
    (the sweeper finds them anyway within seconds)."""
    host = host.lower()
    current = await session.scalar(
        select(DestinationHost.consecutive_failures).where(DestinationHost.host == host)
    )
    if current is None:
        return []
    now = datetime.now(UTC)
    await save_host_health(session, {host: (HEALTHY, None, now)})
    return await unpark_host(session, host, now)


async def set_host_paused(session: AsyncSession, host: str, paused: bool) -> list[int]:
    """Hold (or release) every delivery to a host without failing it. On resume, returns the
    activity ids with due deliveries to that host, to wake after commit."""
    host = host.lower()
    # One upsert, so two concurrent requests for a host never seen before cannot both
    # insert it (the loser would hit the primary key: a 500 for a valid request).
    builder: Any = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    statement = builder(DestinationHost).values(host=host, paused=paused)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["host"], set_={"paused": statement.excluded.paused}
        )
    )
    if paused:
        return []
    due = await session.scalars(
        select(Delivery.activity_id)
        .where(
            Delivery.host == host,
            Delivery.state.in_(("pending", "retrying")),
            Delivery.next_attempt_at <= datetime.now(UTC),
        )
        .distinct()
    )
    return sorted(due.all())
