"""Operations on destination hosts that other parts of the relay call."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.host_health import HEALTHY
from service.db.models import DestinationHost
from service.delivery_store import save_host_health, unpark_host


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
