"""Fetching remote ActivityPub documents (actors, keys) safely.

Every fetch is bounded (connect 5 s, read 10 s, 30 s in all, 1 MB streamed, 3 redirects),
goes only to addresses the guard allows (each redirect is checked again), accepts only
ActivityPub content types, parses plain JSON (a remote `@context` is never fetched), and
only believes a document that lives where it says it does. GETs are signed so servers
requiring authorized fetch answer; key documents are first asked for unsigned (below).

`PublicKeyResolver` turns a keyId into the owning actor and the key's PEM, with a small
cache. Persisting keys is up to the caller; the resolver is the network side of it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from federation.activitypub.inbox_activities import ActorEndpoints, actor_endpoints
from federation.activitypub.key_documents import (
    KeyNotFound,
    find_public_key,
    lists_key,
    same_origin,
)
from federation.activitypub.vocabulary import ACTIVITYPUB_MEDIA_TYPES
from federation.peers.addresses import ForbiddenUrl, check_url, is_local_name, parse_address
from federation.signatures.cavage import sign_request
from federation.signatures.errors import KeyUnusable
from federation.signatures.public_keys import load_public_key
from service.network.aiohttp_transport import AiohttpTransport
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_httpx_client,
)
from service.remote.host_rate_limit import HostRateLimiter
from service.runtime.settings import Settings

# Hosts remembered as refusing unsigned key fetches; an evicted one costs one extra request.
SIGNED_FETCH_HOSTS_REMEMBERED: Final = 10_000
_SIGNATURE_DEMANDED: Final = frozenset({401, 403})
ACCEPT: Final = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

FetchFailure = Literal[
    "forbidden_url",
    "forbidden_address",
    "timeout",
    "connection_failed",
    "http_status",
    "too_many_redirects",
    "bad_redirect",
    "content_type",
    "too_large",
    "invalid_json",
    "id_mismatch",
    "rate_limited",
    "key_not_found",
    "key_unusable",
]


class RemoteFetchError(Exception):
    """A remote document could not be fetched or was not acceptable."""

    def __init__(
        self, reason: FetchFailure, url: str, detail: str, *, status_code: int | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail} ({url})")
        self.reason: FetchFailure = reason
        self.url = url
        self.detail = detail
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_body_bytes: int = 1_048_576
    max_redirects: int = 3


@dataclass(frozen=True, slots=True)
class FetchSigner:
    """The key GETs are signed with (normally the instance actor's)."""

    key_id: str
    private_key_pem: str


@dataclass(frozen=True, slots=True)
class RemoteDocument:
    requested_url: str
    final_url: str
    document: dict[str, Any]


IdCheck = Literal["exact", "same_origin"]


class RemoteDocumentFetcher:
    def __init__(
        self,
        *,
        policy: AddressPolicy,
        allow_http: bool = False,
        signer: FetchSigner | None = None,
        limits: FetchLimits | None = None,
        user_agent: str = "fedirelay",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._policy = policy
        self._allow_http = allow_http
        self._signer = signer
        self._limits = limits or FetchLimits()
        timeout = httpx.Timeout(
            connect=self._limits.connect_timeout,
            read=self._limits.read_timeout,
            write=self._limits.read_timeout,
            pool=self._limits.connect_timeout,
        )
        # Key fetches come in bursts to many hosts at once (a first contact per follower),
        # the load httpcore's pool handles worst; aiohttp carries these requests.
        self._client = client or guarded_httpx_client(
            policy,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            transport=AiohttpTransport(policy),
        )
        self._hosts_demanding_signatures: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, signer: FetchSigner | None = None
    ) -> RemoteDocumentFetcher:
        """Private addresses and plain http are allowed in test mode only."""
        return cls(
            policy=AddressPolicy(allow_private=settings.test_mode),
            allow_http=settings.test_mode,
            signer=signer,
            user_agent=f"fedirelay (+{settings.base_url})",
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, url: str, *, id_check: IdCheck = "exact", unsigned_first: bool = False
    ) -> RemoteDocument:
        """Fetch and parse a document.

        With `id_check="exact"` the document's `id` must be the URL it was finally served
        from, or the requested URL when every redirect stayed on that origin. With
        `"same_origin"` (key fetches, where a key URL may serve its actor) the `id` need
        only share the origin of both.

        With `unsigned_first`, the GET goes out unsigned unless the host is known to refuse
        that; a 401 or 403 is answered by asking again, signed, and remembering the host.
        Servers in authorized-fetch mode still serve actors and keys unsigned (a verifier
        needs the key before it can check anything), so for key fetches this saves an RSA
        signature per first contact: most of what a first contact costs the API.
        """
        requested = urldefrag(url).url
        try:
            async with asyncio.timeout(self._limits.total_timeout):
                final_url, document = await self._fetch_following_redirects(
                    requested, unsigned_first
                )
        except TimeoutError as error:
            raise RemoteFetchError("timeout", requested, "fetch took too long") from error
        _check_document_id(document, requested, final_url, id_check)
        return RemoteDocument(requested_url=requested, final_url=final_url, document=document)

    async def _fetch_following_redirects(
        self, requested: str, unsigned_first: bool
    ) -> tuple[str, dict[str, Any]]:
        current = requested
        for _ in range(self._limits.max_redirects + 1):
            self._check_url(current)
            host = urlsplit(current).hostname or ""
            signed = not unsigned_first or host in self._hosts_demanding_signatures
            response = await self._send(current, signed=signed)
            if (
                not signed
                and self._signer is not None
                and response.status_code in _SIGNATURE_DEMANDED
            ):
                await response.aclose()
                self._remember_signature_demand(host)
                response = await self._send(current, signed=True)
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    current = _redirect_target(current, response)
                    continue
                if response.status_code != 200:
                    raise RemoteFetchError(
                        "http_status",
                        current,
                        f"answered {response.status_code}",
                        status_code=response.status_code,
                    )
                _check_content_type(current, response)
                body = await self._read_capped(current, response)
            finally:
                await response.aclose()
            return current, _parse_json_object(current, body)
        raise RemoteFetchError(
            "too_many_redirects", requested, f"more than {self._limits.max_redirects} redirects"
        )

    def _check_url(self, url: str) -> None:
        """Scheme and shape first; then the host against the policy (which may exempt
        networks), since `check_url` alone knows only all-or-nothing test mode."""
        try:
            checked = check_url(url, allow_private=True, allow_http=self._allow_http)
        except ForbiddenUrl as error:
            raise RemoteFetchError("forbidden_url", url, error.detail) from error
        if self._policy.allow_private:
            return
        literal = parse_address(checked.host)
        if literal is not None and not self._policy.permits(str(literal)):
            raise RemoteFetchError("forbidden_address", url, f"{checked.host} is not public")
        if literal is None and is_local_name(checked.host):
            raise RemoteFetchError("forbidden_address", url, f"{checked.host} is a local name")

    def _remember_signature_demand(self, host: str) -> None:
        self._hosts_demanding_signatures[host] = None
        self._hosts_demanding_signatures.move_to_end(host)
        while len(self._hosts_demanding_signatures) > SIGNED_FETCH_HOSTS_REMEMBERED:
            self._hosts_demanding_signatures.popitem(last=False)

    async def _send(self, url: str, *, signed: bool = True) -> httpx.Response:
        headers = {"Accept": ACCEPT}
        if signed and self._signer is not None:
            headers.update(
                sign_request(
                    "GET", url, {}, None, self._signer.key_id, self._signer.private_key_pem
                )
            )
        request = self._client.build_request("GET", url, headers=headers)
        try:
            return await self._client.send(request, stream=True)
        except ForbiddenAddressError as error:
            raise RemoteFetchError("forbidden_address", url, str(error)) from error
        except httpx.TimeoutException as error:
            raise RemoteFetchError("timeout", url, f"{type(error).__name__}") from error
        except (httpx.HTTPError, OSError) as error:
            raise RemoteFetchError("connection_failed", url, str(error) or repr(error)) from error

    async def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        limit = self._limits.max_body_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RemoteFetchError("too_large", url, f"declares {declared} bytes")
        chunks: list[bytes] = []
        received = 0
        try:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > limit:
                    raise RemoteFetchError("too_large", url, f"body exceeds {limit} bytes")
                chunks.append(chunk)
        except httpx.TimeoutException as error:
            raise RemoteFetchError("timeout", url, "reading the body timed out") from error
        except httpx.HTTPError as error:
            raise RemoteFetchError("connection_failed", url, str(error)) from error
        return b"".join(chunks)


def _redirect_target(current: str, response: httpx.Response) -> str:
    location: str = response.headers.get("location", "")
    if not location:
        raise RemoteFetchError("bad_redirect", current, "redirect without Location")
    try:
        target: str = urldefrag(urljoin(current, location.strip())).url
    except ValueError as error:
        raise RemoteFetchError("bad_redirect", current, "unusable Location") from error
    return target


def _check_content_type(url: str, response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACTIVITYPUB_MEDIA_TYPES:
        raise RemoteFetchError(
            "content_type", url, f"content type {media_type or 'none'!r} is not ActivityPub"
        )


def _parse_json_object(url: str, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RemoteFetchError("invalid_json", url, "body is not valid JSON") from error
    if not isinstance(document, dict):
        raise RemoteFetchError("invalid_json", url, "body is not a JSON object")
    return document


def _check_document_id(
    document: dict[str, Any], requested: str, final_url: str, id_check: IdCheck
) -> None:
    document_id = document.get("id")
    if not isinstance(document_id, str):
        raise RemoteFetchError("id_mismatch", final_url, "document has no id")
    if id_check == "same_origin":
        if same_origin(document_id, final_url) and same_origin(requested, final_url):
            return
    elif document_id == final_url or (
        document_id == requested and same_origin(requested, final_url)
    ):
        return
    raise RemoteFetchError(
        "id_mismatch", final_url, f"document claims id {document_id!r}, not where it came from"
    )


# --- keys --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key_id: str
    owner: str
    public_key_pem: str
    # The owner's inboxes, read from the same fetch: a first contact is nearly always a
    # Follow, whose processing would otherwise fetch the very same document again.
    owner_endpoints: ActorEndpoints | None = None


class PublicKeyResolver:
    """keyId -> (owner actor id, public key PEM), cached in memory.

    `resolve` answers from the cache while the entry is fresh; `refresh` always fetches
    (call it once after a signature fails to verify, in case the key was rotated). Fetches
    are rate limited per remote host, and concurrent requests for one key share a fetch.
    """

    def __init__(
        self,
        fetcher: RemoteDocumentFetcher,
        *,
        cache_size: int = 2048,
        ttl_seconds: float = 3600.0,
        rate_limiter: HostRateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._cache_size = cache_size
        self._ttl = ttl_seconds
        self._rate_limiter = rate_limiter if rate_limiter is not None else HostRateLimiter()
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ResolvedKey]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[ResolvedKey]] = {}

    async def resolve(self, key_id: str) -> ResolvedKey:
        cached = self._cache.get(key_id)
        if cached is not None:
            expires_at, key = cached
            if self._clock() < expires_at:
                self._cache.move_to_end(key_id)
                return key
            del self._cache[key_id]
        return await self._fetch_shared(key_id)

    async def refresh(self, key_id: str) -> ResolvedKey:
        self.forget(key_id)
        return await self._fetch_shared(key_id)

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def _fetch_shared(self, key_id: str) -> ResolvedKey:
        task = self._in_flight.get(key_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch(key_id))
            self._in_flight[key_id] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key_id, None))
        # Shielded so one waiter giving up does not cancel the fetch for the others.
        return await asyncio.shield(task)

    async def _fetch(self, key_id: str) -> ResolvedKey:
        host = urlsplit(key_id).hostname or ""
        if not self._rate_limiter.try_acquire(host):
            raise RemoteFetchError("rate_limited", key_id, f"too many key fetches from {host}")
        fetched = await self._fetcher.fetch(key_id, id_check="same_origin", unsigned_first=True)
        if not same_origin(fetched.final_url, key_id):
            raise RemoteFetchError("key_not_found", key_id, "key was served from another origin")
        try:
            found = find_public_key(fetched.document, key_id)
        except KeyNotFound as error:
            raise RemoteFetchError("key_not_found", key_id, str(error)) from error
        owner_document = fetched.document
        if found.source == "key":
            owner = await self._fetcher.fetch(found.owner, unsigned_first=True)
            if not lists_key(owner.document, key_id):
                raise RemoteFetchError("key_not_found", key_id, "owner does not list the key")
            owner_document = owner.document
        try:
            load_public_key(found.public_key_pem)
        except KeyUnusable as error:
            raise RemoteFetchError("key_unusable", key_id, error.detail) from error
        endpoints = actor_endpoints(owner_document)
        resolved = ResolvedKey(
            key_id,
            found.owner,
            found.public_key_pem,
            endpoints if endpoints is not None and endpoints.actor_id == found.owner else None,
        )
        self._remember(resolved)
        return resolved

    def _remember(self, key: ResolvedKey) -> None:
        self._cache[key.key_id] = (self._clock() + self._ttl, key)
        self._cache.move_to_end(key.key_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
