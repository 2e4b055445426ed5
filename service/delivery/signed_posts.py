"""Signed POSTs to inboxes over one keep-alive connection pool per worker process.

Inbox POSTs go through `service.delivery.post_pool`, a small HTTP/1.1 client on asyncio
protocols and httptools: fan-out is thousands of identical small requests, and aiohttp's
per-request Python cost was as large as the RSA signature's. The aiohttp session of
`delivery_session` remains for the Mastodon REST API and media. See docs/delivery.md.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from federation.activitypub.vocabulary import ACTIVITY_JSON
from federation.peers.addresses import ForbiddenUrl, check_url
from federation.signatures.cavage import sign_request
from federation.signatures.digest import digest_header
from federation.signatures.time_window import format_http_date
from service.delivery.post_pool import InboxConnections, encode_post, target_of
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_aiohttp_connector,
)

CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 10.0
TOTAL_TIMEOUT: Final = 30.0
RESPONSE_BODY_CAP: Final = 2048
USER_AGENT: Final = "fedirelay/0.1 (+https://fedirelay.dev)"


@dataclass(frozen=True, slots=True)
class PreparedActivity:
    """Everything shared by all deliveries of one activity: built once per activity."""

    activity_row_id: int
    body: bytes
    digest: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def build(
        cls,
        activity_row_id: int,
        document: dict[str, Any],
        key_id: str,
        private_key: rsa.RSAPrivateKey,
    ) -> PreparedActivity:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(activity_row_id, body, digest_header(body), key_id, private_key)


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None
    error: str | None
    retry_after: str | None
    duration_ms: int
    forbidden: bool = False


class _DateCache:
    """The `Date` field changes once a second; formatting it per request is wasted work."""

    def __init__(self) -> None:
        # One attribute, replaced whole, so a signing thread never sees a torn pair.
        self._cached = (-1, "")

    def now(self) -> str:
        second = int(time.time())
        cached_second, value = self._cached
        if second != cached_second:
            value = format_http_date(second)
            self._cached = (second, value)
        return value


def delivery_session(*, test_mode: bool, concurrency: int, per_host: int) -> aiohttp.ClientSession:
    connector = guarded_aiohttp_connector(
        AddressPolicy(allow_private=test_mode),
        limit=concurrency,
        limit_per_host=per_host,
        ttl_dns_cache=300,
        keepalive_timeout=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(
            total=TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT
        ),
        headers={"User-Agent": USER_AGENT},
        auto_decompress=False,
    )


def inbox_connections(
    *,
    test_mode: bool,
    concurrency: int,
    per_host: int,
    ssl_context: ssl.SSLContext | None = None,
) -> InboxConnections:
    """The keep-alive pool inbox POSTs go through; `close()` it when the process stops."""
    return InboxConnections(
        AddressPolicy(allow_private=test_mode),
        limit=concurrency,
        per_host=per_host,
        ssl_context=ssl_context,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


class InboxPoster:
    """Signs and posts deliveries through `connections` (which its owner closes)."""

    def __init__(self, connections: InboxConnections, *, test_mode: bool) -> None:
        self.test_mode = test_mode
        self.connections = connections
        self._dates = _DateCache()

    def refusal(self, inbox: str) -> str | None:
        """Why this inbox may never be posted to, or None."""
        return _refusal(inbox, self.test_mode)

    def signed_headers(self, inbox: str, activity: PreparedActivity) -> dict[str, str]:
        """The request's header fields, signed. Pure CPU (the RSA signature is nearly all of
        it, and releases the GIL), so it may run on a signing thread."""
        headers = {
            "Date": self._dates.now(),
            "Digest": activity.digest,
            "Content-Type": ACTIVITY_JSON,
            "Accept": ACTIVITY_JSON,
        }
        headers.update(
            sign_request(
                "POST", inbox, headers, activity.body, activity.key_id, activity.private_key
            )
        )
        return headers

    def sign_many(self, inboxes: list[str], activity: PreparedActivity) -> list[dict[str, str]]:
        return [self.signed_headers(inbox, activity) for inbox in inboxes]

    async def post(
        self,
        inbox: str,
        activity: PreparedActivity,
        headers: dict[str, str] | None = None,
    ) -> PostResult:
        """POST the activity; `headers` are the ones `signed_headers` made, if signed ahead."""
        started = time.perf_counter()
        refusal = self.refusal(inbox)
        if refusal is not None:
            return PostResult(None, refusal, None, 0, forbidden=True)
        if headers is None:
            headers = self.signed_headers(inbox, activity)
        target = target_of(inbox)
        request = encode_post(target, headers, activity.body, USER_AGENT)
        deadline = asyncio.get_running_loop().time() + TOTAL_TIMEOUT
        try:
            answer = await self.connections.send(
                target.origin, request, deadline=deadline, snippet_cap=RESPONSE_BODY_CAP
            )
        except ForbiddenAddressError as error:
            return PostResult(None, f"refused: {error}", None, _elapsed_ms(started), True)
        except (TimeoutError, OSError) as error:
            return PostResult(None, _describe(error), None, _elapsed_ms(started))
        error_text = None
        if not 200 <= answer.status < 300:
            text = answer.body_start.decode("utf-8", "replace").strip()
            error_text = f"HTTP {answer.status}" + (f": {text[:500]}" if text else "")
        return PostResult(answer.status, error_text, answer.retry_after, _elapsed_ms(started))


@functools.lru_cache(maxsize=4096)
def _refusal(inbox: str, test_mode: bool) -> str | None:
    # The same inboxes come back with every activity; the answer depends on the text only
    # (the address the name resolves to is checked again at connect time).
    try:
        check_url(inbox, allow_private=test_mode, allow_http=test_mode)
        target_of(inbox)  # its host must have an ASCII form for the Host field
    except ForbiddenUrl as error:
        return f"refused: {error.detail}"
    except ValueError as error:  # a host name IDNA cannot encode: never deliverable
        return f"refused: unusable inbox URL ({error})"
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
