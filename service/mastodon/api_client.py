"""A small client for the Mastodon REST API: statuses and media of one account.

Rate limits are read from every answer (`X-RateLimit-Remaining`, `X-RateLimit-Reset`), so
the caller can wait for the window to reset instead of spending requests on 429s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from federation.activitypub.timestamps import parse_timestamp
from federation.peers.retry_schedule import parse_retry_after
from federation.rendering.mastodon_status import StatusDraft


class MastodonApiError(Exception):
    """The instance refused a request. `status` is None for transport failures."""

    def __init__(
        self, status: int | None, message: str, *, retry_at: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_at = retry_at


class MediaStillProcessing(MastodonApiError):
    def __init__(self, media_id: str) -> None:
        super().__init__(None, f"media {media_id} still processing")


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    filename: str
    content_type: str


class MastodonClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        instance_url: str,
        access_token: str,
        *,
        media_poll_interval: float = 1.0,
        media_max_polls: int = 30,
    ) -> None:
        self.http = http
        self.base = instance_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {access_token}"}
        self.media_poll_interval = media_poll_interval
        self.media_max_polls = media_max_polls
        self.rate_limited_until: datetime | None = None
        self.account_id: str | None = None

    async def _request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            response = await self.http.request(
                method, f"{self.base}{path}", headers=headers, **kwargs
            )
        except httpx.HTTPError as error:
            raise MastodonApiError(None, f"{type(error).__name__}: {error}"[:500]) from error
        self._note_rate_limit(response)
        if response.status_code in ok:
            return response
        raise MastodonApiError(
            response.status_code,
            _error_message(response),
            retry_at=self._retry_at(response),
        )

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = _reset_time(response.headers.get("X-RateLimit-Reset"))
        if remaining is not None and remaining.strip() == "0" and reset is not None:
            self.rate_limited_until = reset
        elif remaining is not None and remaining.strip().isdigit():
            self.rate_limited_until = None

    def _retry_at(self, response: httpx.Response) -> datetime | None:
        if response.status_code != 429 and response.status_code < 500:
            return None
        now = datetime.now(UTC)
        seconds = parse_retry_after(response.headers.get("Retry-After"), now)
        if seconds is not None:
            return datetime.fromtimestamp(now.timestamp() + seconds, UTC)
        return _reset_time(response.headers.get("X-RateLimit-Reset"))

    async def verify_credentials(self) -> dict[str, Any]:
        response = await self._request("GET", "/api/v1/accounts/verify_credentials")
        account: dict[str, Any] = response.json()
        self.account_id = str(account.get("id"))
        return account

    async def recent_statuses(self, limit: int = 40) -> list[dict[str, Any]]:
        if self.account_id is None:
            await self.verify_credentials()
        response = await self._request(
            "GET",
            f"/api/v1/accounts/{self.account_id}/statuses",
            params={"limit": str(limit), "exclude_reblogs": "true"},
        )
        statuses = response.json()
        return [s for s in statuses if isinstance(s, dict)] if isinstance(statuses, list) else []

    async def upload_media(self, media: MediaFile, description: str) -> str:
        """Upload, then wait (bounded) while the instance processes it (a 202 answer)."""
        response = await self._request(
            "POST",
            "/api/v2/media",
            ok=(200, 202),
            files={"file": (media.filename, media.data, media.content_type)},
            data={"description": description} if description else {},
        )
        media_id = str(response.json()["id"])
        if response.status_code == 200:
            return media_id
        for _ in range(self.media_max_polls):
            await asyncio.sleep(self.media_poll_interval)
            polled = await self._request("GET", f"/api/v1/media/{media_id}", ok=(200, 206))
            if polled.status_code == 200 and polled.json().get("url"):
                return media_id
        raise MediaStillProcessing(media_id)

    async def create_status(
        self, draft: StatusDraft, media_ids: list[str], idempotency_key: str
    ) -> dict[str, Any]:
        response = await self._request(
            "POST",
            "/api/v1/statuses",
            json=draft.form(media_ids),
            headers={"Idempotency-Key": idempotency_key},
        )
        status: dict[str, Any] = response.json()
        return status

    async def edit_status(
        self, status_id: str, draft: StatusDraft, media_ids: list[str]
    ) -> dict[str, Any]:
        body = draft.form(media_ids)
        body.pop("visibility", None)  # visibility cannot be changed by an edit
        response = await self._request("PUT", f"/api/v1/statuses/{status_id}", json=body)
        status: dict[str, Any] = response.json()
        return status

    async def delete_status(self, status_id: str) -> None:
        """Deleting a status that is already gone counts as done."""
        await self._request("DELETE", f"/api/v1/statuses/{status_id}", ok=(200, 404))


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    else:
        message = response.text.strip()[:300] or response.reason_phrase
    return f"HTTP {response.status_code}: {message}"[:500]


def _reset_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value.strip())
    except ValueError:
        return None
