"""Retrying stored webhook events by hand: the one implementation behind the admin API, the
dashboard and `fedirelay webhooks retry`.

A retry starts the event's schedule again (no attempts, due now) and wakes a worker; the
processing is idempotent, so retrying an event that a worker is about to take costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import WebhookEvent

# `received` too: an event waiting for its next retry can be made due now.
RETRYABLE_STATES = ("failed", "received")


@dataclass(frozen=True, slots=True)
class WebhookSelection:
    """Which events a retry applies to: ids, a source's failed events, or every failed one."""

    event_ids: Sequence[int] = ()
    source: str | None = None
    all_failed: bool = False

    def condition(self) -> ColumnElement[bool]:
        if self.event_ids:
            return WebhookEvent.id.in_(list(self.event_ids)) & WebhookEvent.state.in_(
                RETRYABLE_STATES
            )
        if self.source is not None:
            return (WebhookEvent.source == self.source) & (WebhookEvent.state == "failed")
        if self.all_failed:
            return WebhookEvent.state == "failed"
        raise ValueError("nothing selected")


async def retry_webhook_events(session: AsyncSession, selection: WebhookSelection) -> list[int]:
    """Make the selected events due again from scratch; returns their ids, to enqueue after
    the commit. The last error stays on the row until a later failure replaces it."""
    result = await session.execute(
        update(WebhookEvent)
        .where(selection.condition())
        .values(state="received", attempts=0, next_attempt_at=None, processed_at=None)
        .returning(WebhookEvent.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(row[0] for row in result)
