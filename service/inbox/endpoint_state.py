"""Per-process state of the federation endpoints: key cache, fetcher, limits, lookups.

Created once when the app starts (the inbox router's lifespan) and kept on
`app.state.federation`, so no request parses a key, loads the block list or looks up an
account handle from scratch.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from sqlalchemy import select

from federation.activitypub.inbox_activities import domain_is_blocked
from service.accounts.instance_actor import instance_signer
from service.db.engine import Database
from service.db.models import Account, BlockedDomain
from service.inbox.request_authentication import InboundSignatureVerifier
from service.inbox.store import InboxWriter
from service.remote.documents import FetchSigner, PublicKeyResolver, RemoteDocumentFetcher
from service.remote.host_rate_limit import HostRateLimiter
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings


class BlockedDomains:
    """The block list, reloaded from the database at most every `ttl` seconds."""

    def __init__(
        self, database: Database, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._database = database
        self._ttl = ttl
        self._clock = clock
        self._domains: frozenset[str] = frozenset()
        self._loaded_at: float | None = None

    async def domains(self) -> frozenset[str]:
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at > self._ttl:
            async with self._database.session() as session:
                rows = await session.execute(select(BlockedDomain.domain))
                self._domains = frozenset(str(domain).lower() for domain in rows.scalars())
            self._loaded_at = now
        return self._domains

    async def blocks(self, host: str) -> bool:
        return domain_is_blocked(host, await self.domains())

    def invalidate(self) -> None:
        self._loaded_at = None


class AccountIds:
    """handle -> account id, cached briefly. An unknown handle is cached for a much shorter
    time: long enough to absorb a flood of requests for it, short enough that a newly created
    account's inbox answers within seconds."""

    def __init__(
        self,
        database: Database,
        *,
        ttl: float = 30.0,
        unknown_ttl: float = 2.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl
        self._unknown_ttl = unknown_ttl
        self._size = size
        self._clock = clock
        self._ids: OrderedDict[str, tuple[float, int | None]] = OrderedDict()

    async def get(self, handle: str) -> int | None:
        key = handle.lower()
        now = self._clock()
        cached = self._ids.get(key)
        if cached is not None:
            ttl = self._ttl if cached[1] is not None else self._unknown_ttl
            if now - cached[0] <= ttl:
                return cached[1]
        async with self._database.session() as session:
            account_id = await session.scalar(select(Account.id).where(Account.handle == key))
        self._ids[key] = (now, account_id)
        self._ids.move_to_end(key)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return account_id


@dataclass(slots=True)
class FederationRuntime:
    fetcher: RemoteDocumentFetcher
    resolver: PublicKeyResolver
    verifier: InboundSignatureVerifier
    client_limiter: HostRateLimiter | None
    blocked_domains: BlockedDomains
    account_ids: AccountIds
    inbox_writer: InboxWriter

    @classmethod
    def open(
        cls,
        settings: Settings,
        database: Database,
        queue: Callable[[], JobQueue | None],
        signer: FetchSigner | None = None,
    ) -> FederationRuntime:
        fetcher = RemoteDocumentFetcher.from_settings(settings, signer=signer)
        resolver = PublicKeyResolver(fetcher)
        limiter = None
        if settings.inbox_rate_limit_per_second > 0:
            limiter = HostRateLimiter(
                capacity=max(1.0, float(settings.inbox_rate_limit_burst)),
                refill_per_second=settings.inbox_rate_limit_per_second,
                max_hosts=50_000,
            )
        inbox_writer = InboxWriter(database, queue)
        return cls(
            fetcher=fetcher,
            resolver=resolver,
            # A first contact's key is committed with the activity it signed, in the inbox's
            # next batch: no transaction of its own, and the worker finds the actor's
            # inboxes already stored when it answers a Follow.
            verifier=InboundSignatureVerifier(
                database, resolver, record_key=inbox_writer.record_key
            ),
            client_limiter=limiter,
            blocked_domains=BlockedDomains(database),
            account_ids=AccountIds(database),
            inbox_writer=inbox_writer,
        )

    async def close(self) -> None:
        await self.fetcher.aclose()
        await self.inbox_writer.close()


@asynccontextmanager
async def federation_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Router lifespan: runs inside the app's, so the database already exists."""
    # Key fetches are signed as the instance actor, so authorized-fetch servers answer them.
    signer = await instance_signer(app.state.database, app.state.urls)
    runtime = FederationRuntime.open(
        app.state.settings, app.state.database, lambda: app.state.queue, signer
    )
    app.state.federation = runtime
    try:
        yield
    finally:
        await runtime.close()


def runtime_of(request: Request) -> FederationRuntime:
    runtime: FederationRuntime = request.app.state.federation
    return runtime


def request_url(settings: Settings, request: Request) -> str:
    """The URL the sender addressed: our public base URL plus the path and query, which is
    what a signature covers even behind a reverse proxy."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{settings.base_url}{path}?{query}" if query else f"{settings.base_url}{path}"
