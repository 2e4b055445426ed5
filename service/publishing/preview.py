"""Previews: exactly what an event would publish on each account, without storing anything."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.post_activities import create_activity, delete_activity, update_activity
from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from federation.rendering.posts import render_post
from federation.rendering.templates import TemplateProblem
from federation.sources.events import UNPUBLISHED, UPDATED, SourceEvent
from service.db.models import Account
from service.publishing.post_lifecycle import rendering_account
from service.publishing.targets import find_post, target_accounts


async def preview_events(
    session: AsyncSession, urls: InstanceUrls, events: Sequence[SourceEvent]
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    previews: list[dict[str, Any]] = []
    for event in events:
        targets = await target_accounts(session, event)
        for handle in targets.unknown_handles:
            previews.append({"account": handle, "error": "no such account"})
        for account in targets.accounts:
            previews.append(await _preview(session, urls, event, account, now))
    return previews


async def _preview(
    session: AsyncSession, urls: InstanceUrls, event: SourceEvent, account: Account, now: datetime
) -> dict[str, Any]:
    existing = await find_post(session, account, event)
    object_id = existing.object_uri if existing else urls.object(str(uuid.uuid4()))
    activity_id = urls.activity(str(uuid.uuid4()))
    entry: dict[str, Any] = {"account": account.handle, "action": event.action}
    if event.action == UNPUBLISHED:
        if existing is None:
            return {**entry, "error": "no post for this source id"}
        entry["activity"] = delete_activity(activity_id, existing.document, now)
        return entry
    published = (
        existing.published_at if existing and existing.published_at else event.scheduled_at or now
    )
    try:
        rendered = render_post(
            event,
            rendering_account(account, urls),
            object_id=object_id,
            published=max(published, now) if existing is None else published,
            base_url=urls.base_url,
        )
    except TemplateProblem as exc:
        return {**entry, "error": str(exc)}
    document = rendered.document
    if event.action == UPDATED:
        document = {**document, "updated": format_timestamp(now)}
        activity = update_activity(activity_id, document)
    else:
        activity = create_activity(activity_id, document)
    entry.update(
        {
            "activity": activity,
            "object": document,
            "plain_text": rendered.plain_text,
            "length": rendered.length,
            "limit": rendered.limit,
            "within_limit": rendered.length <= rendered.limit,
            "truncated": rendered.truncated,
        }
    )
    if event.scheduled_at and event.scheduled_at > now:
        entry["scheduled_at"] = format_timestamp(event.scheduled_at)
    return entry
