"""A post's lifecycle: an event becomes a Create, an Update or a Delete on each target account.

The `Post` row maps (account, source, source_id) to the object id, so a second delivery of the
same event, or a poll that finds what a webhook already brought, publishes nothing new. All
writes happen in the caller's transaction; after it commits, `announce` wakes the workers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.post_activities import create_activity, delete_activity, update_activity
from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import InstanceUrls
from federation.rendering.posts import RenderedPost, RenderingAccount, render_post
from federation.rendering.templates import TemplateProblem
from federation.sources.events import PUBLISHED, UNPUBLISHED, UPDATED, SourceEvent
from service.community.featured_posts import PinRefused, pin_post, unpin_post
from service.db.models import Account, Post
from service.publishing.activity_records import (
    PublishedActivity,
    enqueue_deliveries,
    publish_activity,
)
from service.publishing.targets import find_post, target_accounts
from service.runtime.job_queue import JobQueue
from service.runtime.tasks import PUBLISH_SCHEDULED_POST

_VOLATILE_KEYS = ("updated",)


def rendering_account(account: Account, urls: InstanceUrls) -> RenderingAccount:
    actor_urls = urls.account(account.handle)
    return RenderingAccount(
        handle=account.handle,
        actor=actor_urls.actor,
        followers=actor_urls.followers,
        object_type=account.object_type,
        max_post_length=account.max_post_length,
        language=account.language,
        templates=dict(account.templates or {}),
    )


@dataclass(slots=True)
class PublishOutcome:
    published: list[PublishedActivity] = field(default_factory=list)
    scheduled: list[tuple[int, datetime]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: PublishOutcome) -> None:
        self.published.extend(other.published)
        self.scheduled.extend(other.scheduled)
        self.accounts.extend(other.accounts)

    def summary(self) -> dict[str, Any]:
        return {"accounts": self.accounts}


def scheduled_job_id(post_id: int, due: datetime) -> str:
    return f"scheduled-post:{post_id}:{int(due.timestamp())}"


async def announce(queue: JobQueue | None, outcome: PublishOutcome) -> None:
    """After commit: wake delivery workers and arm the timers of scheduled posts."""
    await enqueue_deliveries(queue, outcome.published)
    if queue is None:
        return
    for post_id, due in outcome.scheduled:
        await queue.enqueue(
            PUBLISH_SCHEDULED_POST, post_id, job_id=scheduled_job_id(post_id, due), defer_until=due
        )


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in _VOLATILE_KEYS}


class PostPublisher:
    def __init__(
        self,
        session: AsyncSession,
        urls: InstanceUrls,
        *,
        now: datetime | None = None,
        webhook_event_id: int | None = None,
    ) -> None:
        self.session = session
        self.urls = urls
        self.now = now or datetime.now(UTC)
        self.webhook_event_id = webhook_event_id

    async def apply(self, event: SourceEvent) -> PublishOutcome:
        """Apply one event to every account it targets."""
        outcome = PublishOutcome()
        targets = await target_accounts(self.session, event)
        for handle in targets.unknown_handles:
            outcome.accounts.append(
                {"account": handle, "status": "failed", "reason": "no such account"}
            )
        for account in targets.accounts:
            outcome.extend(await self.apply_to(event, account))
        return outcome

    async def apply_to(self, event: SourceEvent, account: Account) -> PublishOutcome:
        existing = await find_post(self.session, account, event, lock=True)
        try:
            if event.action == PUBLISHED:
                outcome = await self._published(event, account, existing)
            elif event.action == UPDATED:
                outcome = await self._updated(event, account, existing)
            elif event.action == UNPUBLISHED:
                return await self._unpublished(event, account, existing)
            else:
                return self._report(
                    account, "ignored", existing, reason=f"unknown action {event.action}"
                )
        except TemplateProblem as exc:
            return self._report(account, "failed", existing, reason=str(exc))
        await self._apply_pin(event, account, outcome)
        return outcome

    async def _apply_pin(
        self, event: SourceEvent, account: Account, outcome: PublishOutcome
    ) -> None:
        if event.pinned is None:
            return
        post = await find_post(self.session, account, event, lock=False)
        if post is None or post.state != "published":
            return  # a scheduled post is pinned by a later update, once it is out
        try:
            if event.pinned:
                await pin_post(self.session, post, self.now)
            else:
                await unpin_post(self.session, post)
        except PinRefused as refused:
            for report in outcome.accounts:
                if report.get("account") == account.handle:
                    report["pin"] = refused.reason

    def _render(
        self, event: SourceEvent, account: Account, object_id: str, published: datetime
    ) -> RenderedPost:
        return render_post(
            event,
            rendering_account(account, self.urls),
            object_id=object_id,
            published=published,
            base_url=self.urls.base_url,
        )

    def _due(self, event: SourceEvent) -> datetime | None:
        due = event.scheduled_at
        return due if due is not None and due > self.now else None

    async def _published(
        self, event: SourceEvent, account: Account, existing: Post | None
    ) -> PublishOutcome:
        if existing is not None and existing.state == "published":
            # A redelivery or a reconciliation poll: an edit at most.
            return await self._updated(event, account, existing)
        if existing is not None and existing.state == "scheduled":
            return await self._reschedule(event, account, existing)
        post = existing or Post(
            account_id=account.id, source=event.source, source_id=event.source_id
        )
        # A withdrawn object's id stays a Tombstone; publishing again needs a fresh id.
        post.object_uri = self.urls.object(str(uuid.uuid4()))
        post.object_type = account.object_type
        post.canonical_url = event.url
        post.webhook_event_id = self.webhook_event_id
        post.deleted_at = None
        post.edited_at = None
        due = self._due(event)
        rendered = self._render(event, account, post.object_uri, due or self.now)
        post.document = rendered.document
        if due is not None:
            post.state, post.scheduled_at, post.published_at = "scheduled", due, None
            self.session.add(post)
            await self.session.flush()
            outcome = self._report(account, "scheduled", post)
            outcome.scheduled.append((post.id, due))
            return outcome
        post.state, post.scheduled_at, post.published_at = "published", None, self.now
        self.session.add(post)
        await self.session.flush()
        activity = create_activity(self.urls.activity(str(uuid.uuid4())), rendered.document)
        return await self._publish(account, post, activity, "published")

    async def _reschedule(self, event: SourceEvent, account: Account, post: Post) -> PublishOutcome:
        due = self._due(event) or post.scheduled_at or self.now
        rendered = self._render(event, account, post.object_uri, due)
        post.document = rendered.document
        post.canonical_url = event.url
        changed = due != post.scheduled_at
        post.scheduled_at = due
        await self.session.flush()
        outcome = self._report(account, "scheduled", post)
        if changed:
            outcome.scheduled.append((post.id, due))
        return outcome

    async def _updated(
        self, event: SourceEvent, account: Account, existing: Post | None
    ) -> PublishOutcome:
        if existing is None:
            return self._report(account, "ignored", None, reason="no post for this source id")
        if existing.state == "scheduled":
            return await self._reschedule(event, account, existing)
        if existing.state != "published":
            return self._report(account, "ignored", existing, reason=f"post is {existing.state}")
        rendered = self._render(
            event, account, existing.object_uri, existing.published_at or self.now
        )
        if _comparable(rendered.document) == _comparable(existing.document):
            return self._report(account, "unchanged", existing)
        document = dict(rendered.document)
        document["updated"] = format_timestamp(self.now)
        existing.document = document
        existing.canonical_url = event.url
        existing.edited_at = self.now
        activity = update_activity(self.urls.activity(str(uuid.uuid4())), document)
        return await self._publish(account, existing, activity, "updated")

    async def _unpublished(
        self, event: SourceEvent, account: Account, existing: Post | None
    ) -> PublishOutcome:
        if existing is None:
            return self._report(account, "ignored", None, reason="no post for this source id")
        if existing.state == "scheduled":
            existing.state = "cancelled"
            await self.session.flush()
            return self._report(account, "cancelled", existing)
        if existing.state != "published":
            return self._report(account, "ignored", existing, reason=f"post is {existing.state}")
        existing.state = "deleted"
        existing.deleted_at = self.now
        activity = delete_activity(
            self.urls.activity(str(uuid.uuid4())), existing.document, self.now
        )
        return await self._publish(account, existing, activity, "deleted")

    async def _publish(
        self, account: Account, post: Post, activity: dict[str, Any], status: str
    ) -> PublishOutcome:
        published = await publish_activity(
            self.session,
            account,
            activity,
            post=post,
            ordering_key=post.object_uri,
            webhook_event_id=self.webhook_event_id,
        )
        outcome = self._report(account, status, post, activity=published.activity_uri)
        outcome.published.append(published)
        return outcome

    @staticmethod
    def _report(
        account: Account,
        status: str,
        post: Post | None,
        *,
        reason: str | None = None,
        activity: str | None = None,
    ) -> PublishOutcome:
        entry: dict[str, Any] = {"account": account.handle, "status": status}
        if post is not None and post.id is not None:
            entry["post_id"] = post.id
            entry["object"] = post.object_uri
        if activity:
            entry["activity"] = activity
        if reason:
            entry["reason"] = reason
        return PublishOutcome(accounts=[entry])
