"""Reading back what a post achieved on a linked Mastodon account.

A post published through the Mastodon REST API collects favourites, boosts and replies on
that server, which the relay's inbox never sees. `GET /api/v1/statuses/:id` gives the
counts; they are stored on the `MastodonStatus` row for the analytics. Only statuses of
posts younger than the refresh window are read, oldest reading first, in bounded batches,
so the job's cost stays flat however many posts there are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select

from federation.peers.addresses import ForbiddenUrl, check_url
from service.db.engine import Database
from service.db.models import MastodonStatus, MastodonTarget, Post
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_httpx_client,
)
from service.runtime.secret_box import SecretUnreadable, decrypt_secret
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

REFRESH_AFTER = timedelta(minutes=30)
BATCH = 200


@dataclass(frozen=True, slots=True)
class StatusCounts:
    favourites: int
    reblogs: int
    replies: int


def status_counts(status: Any) -> StatusCounts | None:
    if not isinstance(status, dict):
        return None
    values = [status.get(name) for name in ("favourites_count", "reblogs_count", "replies_count")]
    counts = [value for value in values if isinstance(value, int) and value >= 0]
    if len(counts) != len(values):
        return None
    return StatusCounts(*counts)


class MastodonCountsRefresher:
    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._database = database
        self._http = guarded_httpx_client(
            AddressPolicy(allow_private=settings.test_mode),
            timeout=httpx.Timeout(30.0, connect=5.0, read=10.0),
            headers={"User-Agent": f"fedirelay (+{settings.base_url})"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, target: MastodonTarget, status_id: str) -> StatusCounts | None:
        url = f"{target.instance_url.rstrip('/')}/api/v1/statuses/{status_id}"
        try:
            check_url(
                url, allow_private=self._settings.test_mode, allow_http=self._settings.test_mode
            )
            token = decrypt_secret(
                self._settings.effective_secret_key, target.access_token_encrypted
            )
            response = await self._http.get(url, headers={"Authorization": f"Bearer {token}"})
        except (ForbiddenUrl, SecretUnreadable, ForbiddenAddressError, httpx.HTTPError) as error:
            log.warning("reading status %s on target %s failed: %s", status_id, target.id, error)
            return None
        if response.status_code != 200 or len(response.content) > 1_048_576:
            return None
        try:
            return status_counts(response.json())
        except ValueError:
            return None

    async def refresh(self, now: datetime | None = None) -> int:
        """Refresh the counts that are due; return how many statuses were updated."""
        now = now or datetime.now(UTC)
        window = timedelta(days=self._settings.mastodon_counts_refresh_days)
        async with self._database.session() as session:
            rows = (
                await session.execute(
                    select(MastodonStatus.id, MastodonStatus.status_id, MastodonTarget)
                    .join(MastodonTarget, MastodonTarget.id == MastodonStatus.target_id)
                    .join(Post, Post.id == MastodonStatus.post_id)
                    .where(
                        MastodonStatus.status_id.is_not(None),
                        Post.state == "published",
                        Post.published_at >= now - window,
                        or_(
                            MastodonStatus.counts_fetched_at.is_(None),
                            MastodonStatus.counts_fetched_at < now - REFRESH_AFTER,
                        ),
                    )
                    .order_by(
                        MastodonStatus.counts_fetched_at.is_not(None),
                        MastodonStatus.counts_fetched_at,
                    )
                    .limit(BATCH)
                )
            ).all()
        updated = 0
        for row_id, status_id, target in rows:
            counts = await self.fetch(target, str(status_id))
            if counts is None:
                continue
            async with self._database.transaction() as session:
                status = await session.get(MastodonStatus, row_id)
                if status is None:
                    continue
                status.favourites_count = counts.favourites
                status.reblogs_count = counts.reblogs
                status.replies_count = counts.replies
                status.counts_fetched_at = now
            updated += 1
        return updated
