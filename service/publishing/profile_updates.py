"""Federating profile changes: after an account's profile or keys change, its followers'
servers get an `Update` of the actor so they refresh what they show and the keys they verify."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.profile_activities import actor_update_activity
from federation.activitypub.urls import InstanceUrls
from service.accounts.actor_profiles import actor_document
from service.db.models import Account
from service.publishing.activity_records import (
    PublishedActivity,
    new_activity_uri,
    publish_activity,
)


async def publish_profile_update(
    session: AsyncSession, account: Account, urls: InstanceUrls
) -> PublishedActivity:
    """Record the Update and its deliveries in the caller's transaction; enqueue after commit."""
    await session.refresh(account, ["keys"])
    document = actor_document(account, urls)
    activity = actor_update_activity(
        new_activity_uri(urls),
        document,
        urls.account(account.handle).followers,
        datetime.now(UTC),
    )
    # Profile updates supersede each other: one ordering key per actor keeps them in order.
    return await publish_activity(
        session, account, activity, ordering_key=str(document["id"]), in_outbox=False
    )
