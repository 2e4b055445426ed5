"""Deliveries to existing Mastodon accounts through their REST API.

Create posts a status with an `Idempotency-Key`, so a retry within the hour Mastodon keeps
keys for cannot post twice; a retry later than that first looks for the status among the
account's recent ones. Update edits the status, Delete deletes it. The status id is kept in
`MastodonStatus`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import httpx
from sqlalchemy import func, select
from yarl import URL

from federation.peers.addresses import ForbiddenUrl, check_url
from federation.peers.retry_schedule import Verdict
from federation.rendering.mastodon_status import (
    MediaSpec,
    StatusDraft,
    compose_status,
    matches_status,
)
from service.db.engine import Database
from service.db.models import DeliveryAttempt, MastodonStatus, MastodonTarget, Post
from service.delivery.engine import ActivitySnapshot, AttemptResult
from service.delivery.store import ClaimedDelivery
from service.mastodon.api_client import MastodonApiError, MastodonClient, MediaFile
from service.network.guarded_connections import AddressPolicy, guarded_httpx_client
from service.runtime.secret_box import SecretUnreadable, decrypt_secret
from service.runtime.settings import Settings

# Mastodon remembers an Idempotency-Key for one hour; past this, look before posting again.
IDEMPOTENCY_WINDOW: Final = timedelta(minutes=50)
MAX_MEDIA_BYTES: Final = 16 * 1024 * 1024
_PERMANENT_STATUSES: Final = frozenset({400, 401, 403, 404, 410, 413, 422})


def mastodon_inbox(target: MastodonTarget) -> str:
    """The `inbox` recorded on a Delivery to a Mastodon target (unique per target)."""
    return f"{target.instance_url.rstrip('/')}/api/v1/statuses#target-{target.id}"


def idempotency_key(target_id: int, activity_uri: str) -> str:
    digest = hashlib.sha256(f"{target_id}\n{activity_uri}".encode()).hexdigest()
    return f"fedirelay-{digest[:40]}"


class MastodonDelivery:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        media_session: aiohttp.ClientSession | None = None,
        http: httpx.AsyncClient | None = None,
        media_poll_interval: float = 1.0,
        media_max_polls: int = 30,
        max_clients: int = 1000,
    ) -> None:
        self.settings = settings
        self.database = database
        self.media_session = media_session
        self.http = http or guarded_httpx_client(
            AddressPolicy(allow_private=settings.test_mode),
            timeout=httpx.Timeout(30.0, connect=5.0, read=10.0),
            headers={"User-Agent": "fedirelay/0.1 (+https://fedirelay.dev)"},
        )
        self._owns_http = http is None
        self.media_poll_interval = media_poll_interval
        self.media_max_polls = media_max_polls
        self.max_clients = max_clients
        self._clients: OrderedDict[tuple[int, str], MastodonClient] = OrderedDict()

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    def _client(self, target: MastodonTarget, token: str) -> MastodonClient:
        key = (target.id, hashlib.sha256(token.encode()).hexdigest())
        client = self._clients.get(key)
        if client is None:
            client = MastodonClient(
                self.http,
                target.instance_url,
                token,
                media_poll_interval=self.media_poll_interval,
                media_max_polls=self.media_max_polls,
            )
            self._clients[key] = client
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        self._clients.move_to_end(key)
        return client

    async def deliver(self, activity: ActivitySnapshot, delivery: ClaimedDelivery) -> AttemptResult:
        started = time.perf_counter()
        async with self.database.session() as session:
            target = await session.get(MastodonTarget, delivery.mastodon_target_id)
            post = await session.get(Post, activity.post_id) if activity.post_id else None
            existing = None
            first_attempt = None
            if target is not None and post is not None:
                existing = await session.scalar(
                    select(MastodonStatus).where(
                        MastodonStatus.target_id == target.id, MastodonStatus.post_id == post.id
                    )
                )
                first_attempt = await session.scalar(
                    select(func.min(DeliveryAttempt.attempted_at)).where(
                        DeliveryAttempt.delivery_id == delivery.id
                    )
                )
        if target is None:
            return _permanent("the Mastodon target was removed", started)
        if post is None:
            return _done(started)  # nothing a Mastodon account can show
        try:
            token = decrypt_secret(
                self.settings.effective_secret_key, target.access_token_encrypted
            )
        except SecretUnreadable as error:
            return _permanent(str(error), started)
        client = self._client(target, token)
        now = datetime.now(UTC)
        if client.rate_limited_until is not None and client.rate_limited_until > now:
            return AttemptResult(
                Verdict.TRANSIENT, None, None, 0, defer_until=client.rate_limited_until
            )
        draft = compose_status(
            post.document, canonical_url=post.canonical_url, visibility=target.visibility
        )
        status_id = existing.status_id if existing is not None else None
        try:
            if activity.type == "Delete":
                if status_id:
                    await client.delete_status(status_id)
                return _done(started)
            if activity.type == "Update" and status_id:
                media_ids = await self._upload_media(client, draft.media)
                await client.edit_status(status_id, draft, media_ids)
                return _done(started)
            if activity.type not in ("Create", "Update"):
                return _done(started)
            if status_id:
                return _done(started)  # created by an earlier attempt
            status = None
            if first_attempt is not None and now - first_attempt > IDEMPOTENCY_WINDOW:
                status = await self._find_existing(client, draft, post.canonical_url)
            if status is None:
                media_ids = await self._upload_media(client, draft.media)
                status = await client.create_status(
                    draft, media_ids, idempotency_key(target.id, activity.uri)
                )
            await self._remember(target.id, post.id, status)
            return _done(started)
        except MastodonApiError as error:
            return _failure(error, started)
        except MediaUnavailable as error:
            return AttemptResult(
                Verdict.TRANSIENT, None, str(error), _ms(started), host_answered=False
            )

    async def _find_existing(
        self, client: MastodonClient, draft: StatusDraft, canonical_url: str | None
    ) -> dict[str, object] | None:
        for status in await client.recent_statuses():
            if matches_status(status, draft, canonical_url):
                return status
        return None

    async def _remember(self, target_id: int, post_id: int, status: dict[str, object]) -> None:
        async with self.database.transaction() as session:
            row = await session.scalar(
                select(MastodonStatus).where(
                    MastodonStatus.target_id == target_id, MastodonStatus.post_id == post_id
                )
            )
            if row is None:
                row = MastodonStatus(target_id=target_id, post_id=post_id)
                session.add(row)
            row.status_id = str(status.get("id"))
            url = status.get("url")
            row.status_url = url if isinstance(url, str) else None

    async def _upload_media(
        self, client: MastodonClient, media: tuple[MediaSpec, ...]
    ) -> list[str]:
        ids = []
        for spec in media:
            ids.append(await client.upload_media(await self._fetch_media(spec), spec.description))
        return ids

    async def _fetch_media(self, spec: MediaSpec) -> MediaFile:
        if self.media_session is None:
            raise MediaUnavailable("no HTTP session for media downloads")
        try:
            check_url(
                spec.url, allow_private=self.settings.test_mode, allow_http=self.settings.test_mode
            )
        except ForbiddenUrl as error:
            raise MediaUnavailable(f"media URL refused: {error.detail}") from error
        try:
            async with self.media_session.get(
                URL(spec.url, encoded=True), allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise MediaUnavailable(f"media download answered HTTP {response.status}")
                data = await response.content.read(MAX_MEDIA_BYTES + 1)
                if len(data) > MAX_MEDIA_BYTES:
                    raise MediaUnavailable("media file is too large")
                content_type = spec.media_type or response.content_type or "image/jpeg"
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise MediaUnavailable(f"media download failed: {error}") from error
        filename = urlsplit(spec.url).path.rsplit("/", 1)[-1] or "image"
        return MediaFile(data, filename[:100], content_type)


class MediaUnavailable(Exception):
    pass


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _done(started: float) -> AttemptResult:
    return AttemptResult(Verdict.DELIVERED, 200, None, _ms(started))


def _permanent(message: str, started: float) -> AttemptResult:
    return AttemptResult(Verdict.PERMANENT, None, message, _ms(started), host_answered=False)


def _failure(error: MastodonApiError, started: float) -> AttemptResult:
    if error.status is None:
        return AttemptResult(
            Verdict.TRANSIENT, None, error.message, _ms(started), host_answered=False
        )
    retry_after = None
    if error.retry_at is not None:
        retry_after = max(0.0, (error.retry_at - datetime.now(UTC)).total_seconds())
    if error.status in _PERMANENT_STATUSES or error.status == 501:
        verdict = Verdict.PERMANENT
    else:
        verdict = Verdict.TRANSIENT
    return AttemptResult(
        verdict, error.status, error.message, _ms(started), retry_after_seconds=retry_after
    )
