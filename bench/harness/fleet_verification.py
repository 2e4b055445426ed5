"""How a fleet inbox decides whether a request is signed by who it claims.

Keys are fetched by key id over HTTP (only from loopback hosts), cached, and fetched
again once when a signature fails with a cached key, as Mastodon does when a peer
rotates its key.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness.cavage_reference import (
    MASTODON_LIKE_POLICY,
    Headers,
    SignatureError,
    SignatureMismatch,
    SignatureParameters,
    VerificationPolicy,
    load_public_key,
    signature_parameters_of,
    verify_request,
)

DocumentFetcher = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key_id: str
    owner: str | None
    public_key: rsa.RSAPublicKey
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    parameters: SignatureParameters
    owner: str | None


class KeyResolver:
    """Public keys by key id: pinned ones, else fetched from the key's document and cached."""

    def __init__(self, fetch_document: DocumentFetcher) -> None:
        self._fetch_document = fetch_document
        self._cache: dict[str, ResolvedKey] = {}
        # One fetch per key id at a time, however many inboxes are waiting for it.
        self._in_flight: dict[str, asyncio.Future[ResolvedKey]] = {}
        self.fetches = 0

    def pin(self, key_id: str, public_pem: str, owner: str | None = None) -> None:
        self._cache[key_id] = ResolvedKey(key_id, owner, load_public_key(public_pem), pinned=True)

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def resolve(self, key_id: str, refresh: bool = False) -> ResolvedKey:
        cached = self._cache.get(key_id)
        if cached is not None and (cached.pinned or not refresh):
            return cached
        pending = self._in_flight.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ResolvedKey] = asyncio.get_running_loop().create_future()
        self._in_flight[key_id] = future
        try:
            resolved = await self._fetch(key_id)
        except BaseException as error:
            future.set_exception(error)
            # Nobody else may be awaiting; keep the loop from warning about it.
            future.exception()
            raise
        else:
            future.set_result(resolved)
            self._cache[key_id] = resolved
            return resolved
        finally:
            del self._in_flight[key_id]

    async def _fetch(self, key_id: str) -> ResolvedKey:
        document_url, _ = urldefrag(key_id)
        parts = urlsplit(document_url)
        if parts.scheme not in ("http", "https") or not _is_loopback(parts.hostname):
            raise SignatureError(f"key id {key_id!r} is not on a loopback host")
        self.fetches += 1
        try:
            document = await self._fetch_document(document_url)
        except SignatureError:
            raise
        except Exception as error:
            raise SignatureError(f"fetching key {key_id!r} failed: {error}") from error
        return key_from_document(key_id, document)


def key_from_document(key_id: str, document: dict[str, Any]) -> ResolvedKey:
    """Find ``key_id`` in an actor document's ``publicKey`` (or a bare key document)."""
    if document.get("id") == key_id and "publicKeyPem" in document:
        owner = document.get("owner")
        return ResolvedKey(key_id, owner if isinstance(owner, str) else None, _pem(document))
    entries = document.get("publicKey")
    candidates = entries if isinstance(entries, list) else [entries]
    for entry in candidates:
        if isinstance(entry, dict) and entry.get("id") == key_id:
            owner = entry.get("owner")
            if owner != document.get("id"):
                raise SignatureError(f"key {key_id!r} is not owned by the document's actor")
            return ResolvedKey(key_id, owner, _pem(entry))
    raise SignatureError(f"key id {key_id!r} is not in the fetched document")


def _pem(entry: dict[str, Any]) -> rsa.RSAPublicKey:
    pem = entry.get("publicKeyPem")
    if not isinstance(pem, str):
        raise SignatureError("publicKeyPem is missing")
    return load_public_key(pem)


def _is_loopback(hostname: str | None) -> bool:
    if hostname is None:
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class RequestVerifier:
    """Verifies an incoming request end to end: parameters, key, freshness, digest, signature."""

    def __init__(
        self,
        resolver: KeyResolver,
        clock: Callable[[], float],
        policy: VerificationPolicy = MASTODON_LIKE_POLICY,
    ) -> None:
        self.resolver = resolver
        self.clock = clock
        self.policy = policy

    async def verify(
        self, method: str, request_target: str, headers: Headers, body: bytes
    ) -> VerifiedRequest:
        parameters = signature_parameters_of(headers)
        key = await self.resolver.resolve(parameters.key_id)
        try:
            self._check(method, request_target, headers, body, parameters, key)
        except SignatureMismatch:
            if key.pinned:
                raise
            key = await self.resolver.resolve(parameters.key_id, refresh=True)
            self._check(method, request_target, headers, body, parameters, key)
        return VerifiedRequest(parameters, key.owner)

    def _check(
        self,
        method: str,
        request_target: str,
        headers: Headers,
        body: bytes,
        parameters: SignatureParameters,
        key: ResolvedKey,
    ) -> None:
        verify_request(
            method=method,
            request_target=request_target,
            headers=headers,
            body=body,
            public_key=key.public_key,
            now=datetime.fromtimestamp(self.clock(), UTC),
            policy=self.policy,
            parameters=parameters,
        )
