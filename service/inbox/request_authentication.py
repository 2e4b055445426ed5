"""Authenticating signed requests from other servers (inbox POSTs, authorized-fetch GETs).

Keys are looked up in memory first, then in the database (`RemoteActor`, so a restart does
not re-fetch every key), then over the network through `PublicKeyResolver`. When a
signature fails with the key we hold, the key is fetched again once: the remote actor may
have rotated it. The resolver rate-limits those fetches per host, so a flood of bad
signatures cannot become a flood of outbound requests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from federation.signatures.errors import KeyUnusable, SignatureInvalid
from federation.signatures.header_fields import HeaderInput
from federation.signatures.verification import PendingSignature, parse_signature, verify_with_key
from service.db.engine import Database
from service.inbox.key_lookups import BatchedKeyLookups
from service.remote.actors import LearnedKey, remember_key
from service.remote.documents import PublicKeyResolver, RemoteFetchError


@dataclass(frozen=True, slots=True)
class KnownKey:
    key_id: str
    owner: str
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class AuthenticatedSigner:
    key_id: str
    owner: str
    scheme: str


class KeyUnavailable(Exception):
    """The signing key could not be obtained (remote down, gone, not a key...)."""

    def __init__(self, key_id: str, error: RemoteFetchError) -> None:
        super().__init__(f"key {key_id} is unavailable: {error.reason}")
        self.key_id = key_id
        self.error = error

    @property
    def gone(self) -> bool:
        return self.error.status_code in (404, 410)


class InboundSignatureVerifier:
    def __init__(
        self,
        database: Database,
        resolver: PublicKeyResolver,
        *,
        cache_size: int = 8192,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        record_key: Callable[[LearnedKey], None] | None = None,
    ) -> None:
        """`record_key` stores learned keys for later (the inbox's batch writer, which
        commits them with the activities they signed); without it each key is committed
        at once."""
        self._database = database
        self._record_key = record_key
        self._stored = BatchedKeyLookups(database)
        self._resolver = resolver
        self._cache_size = cache_size
        self._keys: OrderedDict[str, KnownKey] = OrderedDict()
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._refreshed_at: OrderedDict[str, float] = OrderedDict()

    def _may_refresh(self, key_id: str) -> bool:
        """A key is re-fetched at most once per interval: forged signatures naming a real key
        must not spend the host's fetch allowance that a genuine first contact needs."""
        now = self._clock()
        last = self._refreshed_at.get(key_id)
        if last is not None and now - last < self._refresh_interval:
            return False
        self._refreshed_at[key_id] = now
        self._refreshed_at.move_to_end(key_id)
        while len(self._refreshed_at) > self._cache_size:
            self._refreshed_at.popitem(last=False)
        return True

    async def authenticate(
        self,
        method: str,
        url: str,
        headers: HeaderInput,
        body: bytes,
        *,
        now: float | None = None,
    ) -> AuthenticatedSigner:
        """Raise SignatureError (not authenticated) or KeyUnavailable; else who signed."""
        return await self.verify(parse_signature(method, url, headers, body, now=now))

    async def verify(self, pending: PendingSignature) -> AuthenticatedSigner:
        """The key-dependent half, for callers that looked at `pending.key_id` first."""
        key = await self.key(pending.key_id)
        try:
            verify_with_key(pending, key.public_key_pem)
        except (SignatureInvalid, KeyUnusable):
            key = await self._refreshed_or_raise(pending, key)
        return AuthenticatedSigner(key.key_id, key.owner, pending.scheme)

    async def _refreshed_or_raise(self, pending: PendingSignature, held: KnownKey) -> KnownKey:
        if not self._may_refresh(pending.key_id):
            verify_with_key(pending, held.public_key_pem)  # raises the original failure
        try:
            fresh = await self._fetch(pending.key_id, refresh=True)
        except KeyUnavailable:
            fresh = held
        if fresh.public_key_pem == held.public_key_pem:
            # Same key as before: re-raise the original failure.
            verify_with_key(pending, held.public_key_pem)
        verify_with_key(pending, fresh.public_key_pem)
        return fresh

    async def key(self, key_id: str) -> KnownKey:
        cached = self._keys.get(key_id)
        if cached is not None:
            self._keys.move_to_end(key_id)
            return cached
        stored = await self._stored.get(key_id)
        if stored is not None:
            known = KnownKey(key_id, stored[0], stored[1])
            self._remember(known)
            return known
        return await self._fetch(key_id, refresh=False)

    async def _fetch(self, key_id: str, *, refresh: bool) -> KnownKey:
        try:
            if refresh:
                resolved = await self._resolver.refresh(key_id)
            else:
                resolved = await self._resolver.resolve(key_id)
        except RemoteFetchError as error:
            raise KeyUnavailable(key_id, error) from error
        known = KnownKey(resolved.key_id, resolved.owner, resolved.public_key_pem)
        learned = LearnedKey(
            known.owner, known.key_id, known.public_key_pem, resolved.owner_endpoints
        )
        if self._record_key is not None:
            self._record_key(learned)
        else:
            async with self._database.transaction() as session:
                await remember_key(session, learned)
        self._remember(known)
        return known

    def forget_owner(self, owner: str) -> None:
        """Drop cached keys of an actor that was deleted."""
        for key_id in [k for k, known in self._keys.items() if known.owner == owner]:
            del self._keys[key_id]
            self._resolver.forget(key_id)

    def _remember(self, known: KnownKey) -> None:
        self._keys[known.key_id] = known
        self._keys.move_to_end(known.key_id)
        while len(self._keys) > self._cache_size:
            self._keys.popitem(last=False)
