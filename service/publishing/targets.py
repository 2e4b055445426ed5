"""Which accounts an event concerns: the ones it names, the ones whose routing accepts it, or,
for edits and withdrawals, the ones that published it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.sources.events import PUBLISHED, SourceEvent
from federation.sources.routing import routes_to
from service.db.models import Account, Post


@dataclass(slots=True)
class EventTargets:
    accounts: list[Account] = field(default_factory=list)
    unknown_handles: list[str] = field(default_factory=list)


async def target_accounts(session: AsyncSession, event: SourceEvent) -> EventTargets:
    if event.accounts:
        rows = await session.execute(select(Account).where(Account.handle.in_(event.accounts)))
        by_handle = {account.handle: account for account in rows.scalars()}
        return EventTargets(
            [by_handle[handle] for handle in dict.fromkeys(event.accounts) if handle in by_handle],
            [handle for handle in dict.fromkeys(event.accounts) if handle not in by_handle],
        )
    if event.action == PUBLISHED:
        rows = await session.execute(select(Account).order_by(Account.id))
        return EventTargets([a for a in rows.scalars() if routes_to(a.routing, event)])
    # An edit or withdrawal concerns whoever published the original, whatever routing says now.
    rows = await session.execute(
        select(Account)
        .join(Post, Post.account_id == Account.id)
        .where(Post.source == event.source, Post.source_id == event.source_id)
        .order_by(Account.id)
    )
    return EventTargets(list(rows.scalars().unique()))


async def find_post(
    session: AsyncSession, account: Account, event: SourceEvent, *, lock: bool = False
) -> Post | None:
    query = select(Post).where(
        Post.account_id == account.id,
        Post.source == event.source,
        Post.source_id == event.source_id,
    )
    if lock:
        # Two deliveries about one post (say, published and updated) are applied in turn.
        query = query.with_for_update()
    result = await session.execute(query)
    return result.scalar_one_or_none()
