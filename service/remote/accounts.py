"""Resolving someone else's account: `user@domain` -> WebFinger -> actor document.

WebFinger answers are JSON Resource Descriptors, not ActivityPub documents, so they are
fetched here with the same guard and bounds as `RemoteDocumentFetcher` (address guard,
timeouts, 1 MB, no redirects followed off the guard); the actor itself and its collections
go through `RemoteDocumentFetcher`, which also checks that a document lives where it says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.account_addresses import (
    AccountAddress,
    InvalidAddress,
    actor_link,
    address_of_actor,
    parse_address,
)
from federation.activitypub.inbox_activities import ActorEndpoints, actor_endpoints
from federation.activitypub.urls import InstanceUrls
from federation.peers.addresses import ForbiddenUrl, check_url
from service.accounts.store import RSA, active_key
from service.db.models import Account
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_httpx_client,
)
from service.remote.actors import find_remote_actor, remember_endpoints
from service.remote.documents import (
    FetchLimits,
    FetchSigner,
    RemoteDocumentFetcher,
    RemoteFetchError,
)
from service.runtime.settings import Settings

JRD_TYPES = frozenset({"application/jrd+json", "application/json"})


class AccountResolutionError(Exception):
    """The account could not be resolved; `detail` says why in words an admin can act on."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ResolvedAccount:
    address: str
    actor_id: str
    document: dict[str, Any]
    endpoints: ActorEndpoints

    @property
    def also_known_as(self) -> tuple[str, ...]:
        return self.endpoints.also_known_as


def signer_for(account: Account, urls: InstanceUrls) -> FetchSigner:
    """Fetches made on an account's behalf are signed with its key (authorized fetch)."""
    return FetchSigner(urls.account(account.handle).rsa_key, active_key(account, RSA).private_pem)


class RemoteAccounts:
    """One per operation (CLI command, request, job); close it when done."""

    def __init__(self, settings: Settings, signer: FetchSigner | None = None) -> None:
        self._settings = settings
        self._limits = FetchLimits()
        self._fetcher = RemoteDocumentFetcher.from_settings(settings, signer=signer)
        self._policy = AddressPolicy(allow_private=settings.test_mode)
        self._client = guarded_httpx_client(
            self._policy,
            timeout=httpx.Timeout(
                connect=self._limits.connect_timeout,
                read=self._limits.read_timeout,
                write=self._limits.read_timeout,
                pool=self._limits.connect_timeout,
            ),
            headers={"User-Agent": f"fedirelay (+{settings.base_url})"},
        )

    async def __aenter__(self) -> RemoteAccounts:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._fetcher.aclose()

    @property
    def fetcher(self) -> RemoteDocumentFetcher:
        return self._fetcher

    async def resolve(self, reference: str) -> ResolvedAccount:
        """Resolve `user@domain` (also `@user@domain`, `acct:user@domain`) or an actor URL."""
        text = reference.strip()
        if text.startswith(("https://", "http://")):
            return await self.fetch_actor(text)
        try:
            address = parse_address(text)
        except InvalidAddress as error:
            raise AccountResolutionError(str(error)) from error
        actor_id = await self.webfinger(address)
        resolved = await self.fetch_actor(actor_id)
        return ResolvedAccount(
            str(address), resolved.actor_id, resolved.document, resolved.endpoints
        )

    async def fetch_actor(self, actor_id: str) -> ResolvedAccount:
        try:
            fetched = await self._fetcher.fetch(actor_id)
        except RemoteFetchError as error:
            raise AccountResolutionError(f"cannot fetch actor {actor_id}: {error}") from error
        endpoints = actor_endpoints(fetched.document)
        if endpoints is None:
            raise AccountResolutionError(f"{actor_id} is not an actor with an inbox")
        handle = endpoints.handle or ""
        address = address_of_actor(handle, endpoints.actor_id) if handle else endpoints.actor_id
        return ResolvedAccount(address, endpoints.actor_id, fetched.document, endpoints)

    async def fetch_document(self, url: str) -> dict[str, Any]:
        try:
            return (await self._fetcher.fetch(url)).document
        except RemoteFetchError as error:
            raise AccountResolutionError(f"cannot fetch {url}: {error}") from error

    async def follower_count(self, resolved: ResolvedAccount) -> int | None:
        """`totalItems` of the actor's followers collection (None when hidden or absent)."""
        collection = resolved.document.get("followers")
        if not isinstance(collection, str):
            return None
        try:
            document = await self.fetch_document(collection)
        except AccountResolutionError:
            return None
        total = document.get("totalItems")
        return total if isinstance(total, int) and total >= 0 else None

    async def webfinger(self, address: AccountAddress) -> str:
        scheme = "http" if self._settings.test_mode else "https"
        url = address.webfinger_url(scheme)
        try:
            check_url(
                url, allow_private=self._policy.allow_private, allow_http=self._settings.test_mode
            )
        except ForbiddenUrl as error:
            raise AccountResolutionError(f"{address}: {error.detail}") from error
        try:
            async with self._client.stream(
                "GET", url, headers={"Accept": "application/jrd+json, application/json"}
            ) as response:
                if response.status_code == 404:
                    raise AccountResolutionError(f"{address} does not exist on {address.domain}")
                if response.status_code != 200:
                    raise AccountResolutionError(
                        f"WebFinger for {address} answered {response.status_code}"
                    )
                body = await _read_capped(response, self._limits.max_body_bytes)
        except ForbiddenAddressError as error:
            raise AccountResolutionError(f"{address.domain} is a forbidden address") from error
        except httpx.HTTPError as error:
            raise AccountResolutionError(f"WebFinger for {address} failed: {error!r}") from error
        try:
            jrd = json.loads(body)
        except ValueError as error:
            raise AccountResolutionError(f"WebFinger for {address} is not JSON") from error
        actor_id = actor_link(jrd)
        if actor_id is None:
            raise AccountResolutionError(f"WebFinger for {address} links no ActivityPub actor")
        return actor_id


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            raise AccountResolutionError(f"answer from {response.url.host} exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def remember_resolved(session: AsyncSession, resolved: ResolvedAccount) -> None:
    await remember_endpoints(session, resolved.endpoints)


async def stored_address(session: AsyncSession, actor_uri: str) -> str | None:
    """`user@host` from what is already known of an actor, without any fetch."""
    actor = await find_remote_actor(session, actor_uri)
    if actor is None or not actor.handle:
        return None
    return address_of_actor(actor.handle, actor_uri)
