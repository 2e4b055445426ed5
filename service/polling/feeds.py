"""Polling a CMS's RSS/Atom feed, for a CMS that cannot call webhooks.

Each subscription is fetched on its own interval with a conditional GET (ETag and
Last-Modified), within the same limits as every other fetch: address guard (lifted only in
test mode), each redirect checked again, connect/read/total timeouts, 1 MB. Entries go through
the same post lifecycle as webhooks (`PostPublisher`, source `feed`, source id = the entry's
guid/id): an entry not seen before is published, an entry whose digest changed becomes an
Update, an unchanged one does nothing.

The first poll of a subscription only records what the feed already holds: subscribing to
a feed with years of entries must not flood every follower with them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urljoin

import httpx
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.urls import InstanceUrls
from federation.peers.addresses import ForbiddenUrl, check_url
from federation.rendering.html_sanitizer import html_to_text
from federation.sources.events import POST, PUBLISHED, UPDATED, SourceEvent
from federation.sources.feed_parsing import FeedEntryData, FeedUnreadable, parse_feed
from service.db.engine import Database
from service.db.models import FeedEntry, FeedSubscription
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_httpx_client,
)
from service.publishing.post_lifecycle import PostPublisher, PublishOutcome, announce
from service.remote.documents import FetchLimits
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

FEED_SOURCE: Final = "feed"
FEED_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
MAX_ENTRIES_PER_POLL: Final = 100
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class FeedFetchError(Exception):
    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchedFeed:
    status: int  # 200, or 304 when unchanged
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(slots=True)
class PollResult:
    subscription_id: int
    status: int | None = None
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    baseline: int = 0
    error: str | None = None
    outcome: PublishOutcome = field(default_factory=PublishOutcome)


class FeedFetcher:
    def __init__(self, settings: Settings, limits: FetchLimits | None = None) -> None:
        self._limits = limits or FetchLimits()
        self._allow_private = settings.test_mode
        self._allow_http = settings.test_mode
        self._client = guarded_httpx_client(
            AddressPolicy(allow_private=settings.test_mode),
            timeout=httpx.Timeout(
                connect=self._limits.connect_timeout,
                read=self._limits.read_timeout,
                write=self._limits.read_timeout,
                pool=self._limits.connect_timeout,
            ),
            headers={"User-Agent": f"fedirelay feed poller (+{settings.base_url})"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def check(self, url: str) -> None:
        try:
            check_url(url, allow_private=self._allow_private, allow_http=self._allow_http)
        except ForbiddenUrl as error:
            raise FeedFetchError(error.detail) from error

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchedFeed:
        headers = {"Accept": FEED_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with asyncio.timeout(self._limits.total_timeout):
                return await self._follow(url, headers)
        except TimeoutError as error:
            raise FeedFetchError("fetching the feed took too long") from error

    async def _follow(self, url: str, headers: dict[str, str]) -> FetchedFeed:
        current = url
        for _ in range(self._limits.max_redirects + 1):
            self.check(current)
            try:
                async with self._client.stream("GET", current, headers=headers) as response:
                    if response.status_code in _REDIRECTS:
                        location = response.headers.get("location")
                        if not location:
                            raise FeedFetchError("redirect without Location", response.status_code)
                        current = urljoin(current, location)
                        continue
                    if response.status_code == 304:
                        return FetchedFeed(304, b"", etag=None, last_modified=None)
                    if response.status_code != 200:
                        raise FeedFetchError(
                            f"feed answered {response.status_code}", response.status_code
                        )
                    body = await self._read(response)
                    return FetchedFeed(
                        200,
                        body,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                    )
            except ForbiddenAddressError as error:
                raise FeedFetchError(str(error)) from error
            except httpx.HTTPError as error:
                raise FeedFetchError(f"{type(error).__name__}: {error}") from error
        raise FeedFetchError(f"more than {self._limits.max_redirects} redirects")

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self._limits.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FeedFetchError(f"feed declares {declared} bytes (limit {limit})", 200)
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > limit:
                raise FeedFetchError(f"feed exceeds {limit} bytes", 200)
            chunks.append(chunk)
        return b"".join(chunks)


def entry_event(entry: FeedEntryData, accounts: tuple[str, ...], action: str) -> SourceEvent:
    return SourceEvent(
        source=FEED_SOURCE,
        kind=POST,
        action=action,
        source_id=entry.entry_id,
        title=html_to_text(entry.title or ""),
        url=entry.url,
        summary=html_to_text(entry.summary or ""),
        content=entry.content_html,
        content_format="html",
        tags=entry.tags,
        accounts=accounts,
    )


def _chronological(entries: tuple[FeedEntryData, ...]) -> list[FeedEntryData]:
    """Oldest first, so posts reach followers in the order they were written. Feeds list
    newest first by convention; entries without dates keep their reversed feed order."""
    reversed_entries = list(reversed(entries[:MAX_ENTRIES_PER_POLL]))
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(reversed_entries, key=lambda entry: entry.published or entry.updated or epoch)


class FeedPoller:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        urls: InstanceUrls,
        queue: JobQueue | None,
        fetcher: FeedFetcher | None = None,
    ) -> None:
        self._settings = settings
        self._database = database
        self._urls = urls
        self._queue = queue
        self._fetcher = fetcher or FeedFetcher(settings)
        self._owns_fetcher = fetcher is None

    async def aclose(self) -> None:
        if self._owns_fetcher:
            await self._fetcher.aclose()

    async def poll_due(self, now: datetime | None = None, limit: int = 50) -> list[PollResult]:
        now = now or datetime.now(UTC)
        async with self._database.session() as session:
            ids = list(
                (
                    await session.execute(
                        select(FeedSubscription.id)
                        .where(
                            or_(
                                FeedSubscription.next_poll_at.is_(None),
                                FeedSubscription.next_poll_at <= now,
                            )
                        )
                        .order_by(FeedSubscription.next_poll_at, FeedSubscription.id)
                        .limit(limit)
                    )
                ).scalars()
            )
        return [await self.poll(subscription_id, now=now) for subscription_id in ids]

    async def poll(self, subscription_id: int, *, now: datetime | None = None) -> PollResult:
        now = now or datetime.now(UTC)
        result = PollResult(subscription_id)
        async with self._database.session() as session:
            subscription = await session.get(FeedSubscription, subscription_id)
            if subscription is None:
                result.error = "no such subscription"
                return result
            url, etag, modified = subscription.url, subscription.etag, subscription.last_modified
        try:
            fetched = await self._fetcher.fetch(url, etag=etag, last_modified=modified)
            result.status = fetched.status
            parsed = parse_feed(fetched.body) if fetched.status == 200 else None
        except (FeedFetchError, FeedUnreadable) as error:
            result.status = getattr(error, "status", None)
            result.error = str(error)
            await self._record_failure(subscription_id, result, now)
            return result
        async with self._database.transaction() as session:
            subscription = await session.get(
                FeedSubscription, subscription_id, with_for_update=True
            )
            if subscription is None:
                result.error = "subscription removed while polling"
                return result
            first_poll = subscription.last_polled_at is None
            if parsed is not None:
                await self._apply_entries(
                    session, subscription, parsed.entries, first_poll, now, result
                )
                subscription.etag = fetched.etag
                subscription.last_modified = fetched.last_modified
            subscription.last_polled_at = now
            subscription.last_status = fetched.status
            subscription.last_error = None
            subscription.next_poll_at = now + timedelta(seconds=subscription.interval_seconds)
        await announce(self._queue, result.outcome)
        return result

    async def _apply_entries(
        self,
        session: AsyncSession,
        subscription: FeedSubscription,
        entries: tuple[FeedEntryData, ...],
        first_poll: bool,
        now: datetime,
        result: PollResult,
    ) -> None:
        known = {
            row.entry_id: row
            for row in (
                await session.execute(
                    select(FeedEntry).where(FeedEntry.subscription_id == subscription.id)
                )
            ).scalars()
        }
        publisher = PostPublisher(session, self._urls, now=now)
        accounts = tuple(str(handle) for handle in subscription.accounts)
        for entry in _chronological(entries):
            digest = entry.digest
            seen = known.get(entry.entry_id)
            if seen is not None and seen.digest == digest:
                continue
            if seen is None:
                seen = FeedEntry(
                    subscription_id=subscription.id,
                    entry_id=entry.entry_id,
                    digest=digest,
                    first_seen_at=now,
                )
                session.add(seen)
                known[entry.entry_id] = seen
                if first_poll:
                    result.baseline += 1
                    continue
                result.new.append(entry.entry_id)
                result.outcome.extend(
                    await publisher.apply(entry_event(entry, accounts, PUBLISHED))
                )
            else:
                seen.digest = digest
                seen.changed_at = now
                result.changed.append(entry.entry_id)
                result.outcome.extend(await publisher.apply(entry_event(entry, accounts, UPDATED)))
        await session.flush()

    async def _record_failure(
        self, subscription_id: int, result: PollResult, now: datetime
    ) -> None:
        log.warning("polling feed %s failed: %s", subscription_id, result.error)
        async with self._database.transaction() as session:
            subscription = await session.get(FeedSubscription, subscription_id)
            if subscription is None:
                return
            subscription.last_status = result.status
            subscription.last_error = (result.error or "")[:2000]
            subscription.next_poll_at = now + timedelta(seconds=subscription.interval_seconds)
