"""A fleet of fake Mastodon-like servers on loopback, for integration tests and benchmarks.

Each fake server ("host") listens on its own loopback address (127.0.1.1, 127.0.1.2,
...; Linux routes all of 127.0.0.0/8 locally), all on one port number. One aiohttp
application in one process serves every host; a request's host is the local address
it arrived on. Each host has ``followers`` actors with RSA keys (drawn from a small
shared pool, each actor with its own key id) and an instance actor at ``/actor``.

Served per host::

    GET  /.well-known/webfinger?resource=acct:{handle}@{address}:{port}
    GET  /.well-known/nodeinfo, /nodeinfo/2.0           (software: mastodon)
    GET  /users/{handle}                                 actor (application/activity+json)
    GET  /users/{handle}/statuses/{id}                   notes sent with Fleet.reply
    GET  /actor                                          instance actor
    POST /inbox, /users/{handle}/inbox, /actor/inbox     verified with cavage_reference

Every inbox POST is verified (draft-cavage-12 signature over at least
``(request-target) host date digest``, ``Digest`` against the body, ``Date`` within an
hour, key fetched by key id from its loopback document and cached, the key's owner
equal to the activity's ``actor``). Failures answer 401 problem+json. Every POST is
recorded as an :class:`~bench.harness.fleet_arrivals.Arrival`, verified or not.

Usage::

    async with Fleet(hosts=10, followers=5) as fleet:
        await fleet.follow(relay_actor_url)          # every actor sends a signed Follow
        await fleet.wait_for_accepts(timeout=30)     # ... and gets the relay's Accept
        await fleet.inject(Fault.server_error(), fraction=0.2, duration=5)
        arrivals = await fleet.wait_for(activity_id, count=10, timeout=30)
        assert not fleet.duplicates() and fleet.signature_failures == 0

Introspection: ``fleet.arrivals`` (all, in order), ``fleet.deliveries_for(id)``
(verified arrivals), ``fleet.duplicates()`` ({(activity id, inbox): count > 1}),
``fleet.wait_for(id, count, timeout)``, ``fleet.signature_failures``,
``fleet.unsupported_scheme_rejections`` (RFC 9421-only requests, answered 401 like a
server that only knows draft-cavage, so a double-knocking sender falls back),
``fleet.fault_responses``, ``fleet.hosts`` / ``fleet.followers``.

Sending to the relay (each signed with the actor's key, to the relay's shared inbox):
``follow``, ``unfollow``, ``like``, ``announce``, ``reply``, ``undo``, ``delete``,
``delete_actor``, ``move``, and ``send`` for any activity, e.g.
``await fleet.like(fleet.actor(host_index, number), relay_actor_url, note_id)``. Each
returns a :class:`SendResult` with the activity sent and the relay's status; the relay's
inboxes come from its actor document (``await fleet.discover(relay_actor_url)``).
``fleet.trust_key(key_id, pem)`` pins a key instead of fetching it.

Faults (:class:`~bench.harness.fleet_faults.Fault`): ``server_error`` (500), ``rate_limited``
(429 + Retry-After), ``gone`` (410), ``slow_body`` (one byte every N seconds),
``refuse`` (listener closed, open connections aborted), ``fail_first(n)``. Apply with
``await fleet.inject(fault, hosts=[...] | fraction=0.1, start_in=0, duration=None)``,
remove with ``await fleet.clear_faults()``.

Every wait takes a timeout and raises :class:`~bench.harness.fleet_arrivals.FleetTimeout`.

As a separate process (to put the fleet on another core)::

    python -m bench.harness.fleet --hosts 1000 --followers 10 [--follow RELAY_ACTOR_URL]

prints one JSON line once ready (``control_url``, ``port``, ``hosts``, ...) and is
then driven over HTTP through :class:`bench.harness.fleet_control.RemoteFleet`.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from bench.harness.cavage_reference import SignatureError, UnsupportedSignatureScheme, sign_request
from bench.harness.fleet_actors import (
    ACTIVITY_STREAMS,
    PUBLIC_COLLECTION,
    FakeHost,
    FleetActor,
    key_pool,
)
from bench.harness.fleet_arrivals import Arrival, ArrivalLog, FleetTimeout
from bench.harness.fleet_faults import ActiveFault, Fault, FaultKind
from bench.harness.fleet_verification import KeyResolver, RequestVerifier

__all__ = [
    "Arrival",
    "Fault",
    "FaultKind",
    "Fleet",
    "FleetActor",
    "FleetError",
    "FleetTimeout",
    "FakeHost",
    "RelayPeer",
    "SendResult",
]

ACTIVITY_JSON = "application/activity+json"
_ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
_HOST_KEY = web.RequestKey("fleet_host", FakeHost)


class FleetError(RuntimeError):
    """The fleet could not do what was asked (relay unreachable, follows rejected, ...)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    activity: dict[str, Any]
    inbox: str
    status: int
    body: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class RelayPeer:
    """The relay actor as the fleet discovered it from its actor document."""

    actor_id: str
    inbox: str
    shared_inbox: str | None
    document: dict[str, Any]

    @property
    def delivery_inbox(self) -> str:
        return self.shared_inbox or self.inbox


@dataclass(eq=False, slots=True)
class FollowState:
    follow_id: str
    actor: FleetActor
    target: str
    send_status: int | None = None
    accepted: bool = False
    rejected: bool = False


@dataclass(frozen=True, slots=True)
class FollowReport:
    sent: int
    failed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BurstReport:
    """What :meth:`Fleet.burst` sent and how the relay answered."""

    sent: int
    statuses: dict[str, int]
    started_at: float  # time.monotonic() when the first request went out
    seconds: float
    latencies: list[float]  # seconds, sorted
    # Requests sent again because a pooled keep-alive connection turned out closed.
    resent: int = 0

    def percentile_ms(self, share: float) -> float | None:
        if not self.latencies:
            return None
        index = min(len(self.latencies) - 1, round(share * (len(self.latencies) - 1)))
        return round(self.latencies[index] * 1000, 2)

    def summary(self) -> dict[str, Any]:
        accepted = sum(n for status, n in self.statuses.items() if status.startswith("2"))
        return {
            "sent": self.sent,
            "accepted": accepted,
            "statuses": self.statuses,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "per_second": round(accepted / self.seconds, 1) if self.seconds > 0 else None,
            "p50_ms": self.percentile_ms(0.5),
            "p99_ms": self.percentile_ms(0.99),
            "resent_after_closed_connection": self.resent,
        }


def loopback_addresses(first: str, count: int) -> list[str]:
    """``count`` addresses from ``first`` upward, skipping .0 and .255 in the last octet."""
    octets = [int(part) for part in first.split(".")]
    if len(octets) != 4 or octets[0] != 127:
        raise ValueError("fleet addresses must be in 127.0.0.0/8")
    value = (octets[1] << 16) | (octets[2] << 8) | octets[3]
    addresses: list[str] = []
    while len(addresses) < count:
        if value >= 1 << 24:
            raise ValueError("ran out of 127.0.0.0/8 addresses")
        last = value & 0xFF
        if last not in (0, 255):
            addresses.append(f"127.{value >> 16}.{(value >> 8) & 0xFF}.{last}")
        value += 1
    return addresses


class Fleet:
    """M fake servers with K follower actors each. Use as ``async with Fleet(...) as fleet``."""

    def __init__(
        self,
        hosts: int = 1,
        followers: int = 1,
        *,
        port: int | None = None,
        first_address: str = "127.0.1.1",
        key_pool_size: int = 8,
        key_bits: int = 2048,
        keep_activity_bodies: bool = True,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = 1 << 20,
        request_timeout: float = 10.0,
        send_concurrency: int = 64,
        handle_prefix: str = "follower",
    ) -> None:
        if hosts < 1 or followers < 0:
            raise ValueError("a fleet needs at least one host and a non-negative follower count")
        self.host_count = hosts
        self.followers_per_host = followers
        self.requested_port = port
        self.first_address = first_address
        self.key_pool_size = key_pool_size
        self.key_bits = key_bits
        self.keep_activity_bodies = keep_activity_bodies
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.send_concurrency = send_concurrency
        self.handle_prefix = handle_prefix

        self.hosts: list[FakeHost] = []
        self.followers: list[FleetActor] = []
        self.port = 0
        self.log = ArrivalLog()
        self.fault_responses: Counter[str] = Counter()
        self.startup_seconds = 0.0
        self._by_address: dict[str, FakeHost] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._resent = 0
        self._follows: dict[str, FollowState] = {}
        self._unsettled_follows: set[str] = set()
        self._peers: dict[str, RelayPeer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.resolver = KeyResolver(self._fetch_json)
        self.verifier = RequestVerifier(self.resolver, clock)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        started = time.perf_counter()
        _raise_open_file_limit(self.host_count + 256)
        keys = key_pool(self.key_pool_size, self.key_bits)
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[self._middleware])
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await self._bind_all()
        except BaseException:
            await self.stop()
            raise
        key_index = 0
        for host in self.hosts:
            host.instance_actor = FleetActor(
                host, host.domain, keys[key_index % len(keys)], kind="Application"
            )
            key_index += 1
            for number in range(self.followers_per_host):
                handle = f"{self.handle_prefix}{number}"
                actor = FleetActor(host, handle, keys[key_index % len(keys)])
                key_index += 1
                host.actors[handle] = actor
                self.followers.append(actor)
        connector = aiohttp.TCPConnector(limit=max(self.send_concurrency, 16) * 2)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        )
        self.startup_seconds = time.perf_counter() - started

    async def _bind_all(self) -> None:
        addresses = loopback_addresses(self.first_address, self.host_count)
        attempts = 1 if self.requested_port is not None else 5
        for attempt in range(attempts):
            port = self.requested_port or 0
            hosts = [FakeHost(index, address, port) for index, address in enumerate(addresses)]
            try:
                await self._listen(hosts[0])
                port = hosts[0].port
                for host in hosts[1:]:
                    host.port = port
                    await self._listen(host)
            except OSError:
                for host in hosts:
                    self._close_listener(host)
                if attempt + 1 == attempts:
                    raise
                continue
            self.port = port
            self.hosts = hosts
            self._by_address = {host.address: host for host in hosts}
            return

    async def _listen(self, host: FakeHost) -> None:
        assert self._runner is not None and self._runner.server is not None
        loop = asyncio.get_running_loop()
        host.server = await loop.create_server(
            self._runner.server, host.address, host.port, reuse_address=True, backlog=256
        )
        if host.port == 0:
            host.port = host.server.sockets[0].getsockname()[1]

    def _close_listener(self, host: FakeHost) -> None:
        if host.server is not None:
            host.server.close()
            host.server = None

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for host in self.hosts:
            self._close_listener(host)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- introspection -----------------------------------------------------------------

    @property
    def arrivals(self) -> list[Arrival]:
        return self.log.arrivals

    @property
    def signature_failures(self) -> int:
        """Inbox POSTs refused for a bad or missing signature or digest."""
        return self.log.signature_failures

    @property
    def unsupported_scheme_rejections(self) -> int:
        """Inbox POSTs refused for carrying only an RFC 9421 signature (not failures)."""
        return self.log.unsupported_scheme_rejections

    def deliveries_for(self, activity_id: str) -> list[Arrival]:
        return self.log.deliveries_for(activity_id)

    def duplicates(self) -> dict[tuple[str, str], int]:
        return self.log.duplicates()

    async def wait_for(self, activity_id: str, count: int, timeout: float) -> list[Arrival]:  # noqa: ASYNC109
        return await self.log.wait_for(activity_id, count, timeout)

    @property
    def shared_inboxes(self) -> list[str]:
        return [host.shared_inbox for host in self.hosts]

    def actor(self, host_index: int = 0, number: int = 0) -> FleetActor:
        return self.hosts[host_index].actors[f"{self.handle_prefix}{number}"]

    def trust_key(self, key_id: str, public_pem: str, owner: str | None = None) -> None:
        """Use this key for ``key_id`` without fetching it."""
        self.resolver.pin(key_id, public_pem, owner)

    # -- faults ------------------------------------------------------------------------

    def pick_hosts(
        self,
        hosts: Iterable[FakeHost | int] | None = None,
        fraction: float | None = None,
        seed: int = 0,
    ) -> list[FakeHost]:
        if hosts is not None:
            return [self.hosts[h] if isinstance(h, int) else h for h in hosts]
        if fraction is None:
            return list(self.hosts)
        count = max(1, round(fraction * len(self.hosts))) if fraction > 0 else 0
        return random.Random(seed).sample(self.hosts, count)

    async def inject(
        self,
        fault: Fault,
        hosts: Iterable[FakeHost | int] | None = None,
        *,
        fraction: float | None = None,
        seed: int = 0,
        start_in: float = 0.0,
        duration: float | None = None,
    ) -> list[FakeHost]:
        """Put ``fault`` on the chosen hosts (all when neither hosts nor fraction is given)."""
        chosen = self.pick_hosts(hosts, fraction, seed)
        starts_at = time.monotonic() + start_in
        ends_at = None if duration is None else starts_at + duration
        for host in chosen:
            active = ActiveFault(fault, starts_at, ends_at, remaining=fault.first_n)
            host.faults.append(active)
            if fault.kind is FaultKind.REFUSE:
                if start_in <= 0:
                    self._refuse(host)
                    if ends_at is not None:
                        self._spawn(self._relisten_at(host, ends_at))
                else:
                    self._spawn(self._refuse_window(host, starts_at, ends_at))
        return chosen

    async def clear_faults(self, hosts: Iterable[FakeHost | int] | None = None) -> None:
        for host in self.pick_hosts(hosts):
            host.faults.clear()
            if host.server is None:
                await self._listen(host)

    def _refuse(self, host: FakeHost) -> None:
        self._close_listener(host)
        assert self._runner is not None and self._runner.server is not None
        for connection in list(self._runner.server.connections):
            transport = connection.transport
            if transport is not None and _local_address(transport) == host.address:
                transport.abort()

    async def _refuse_window(self, host: FakeHost, starts_at: float, ends_at: float | None) -> None:
        await asyncio.sleep(max(0.0, starts_at - time.monotonic()))
        self._refuse(host)
        if ends_at is not None:
            await self._relisten_at(host, ends_at)

    async def _relisten_at(self, host: FakeHost, ends_at: float) -> None:
        await asyncio.sleep(max(0.0, ends_at - time.monotonic()))
        host.faults = [f for f in host.faults if f.fault.kind is not FaultKind.REFUSE]
        if host.server is None and not self._stopping:
            await self._listen(host)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- HTTP server -------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/.well-known/nodeinfo", self._nodeinfo_links)
        app.router.add_get("/nodeinfo/2.0", self._nodeinfo)
        app.router.add_get("/actor", self._instance_actor)
        app.router.add_post("/actor/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/users/{handle}", self._actor)
        app.router.add_post("/users/{handle}/inbox", self._inbox)
        app.router.add_get("/users/{handle}/statuses/{status}", self._status)
        app.router.add_get("/users/{handle}/{collection:outbox|followers|following}", self._empty)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        transport = request.transport
        host = self._by_address.get(_local_address(transport) or "") if transport else None
        if host is None:
            return _problem(404, "Not Found", "no fake server at this address")
        request[_HOST_KEY] = host
        is_inbox_post = request.method == "POST" and request.path.endswith("/inbox")
        fault = host.fault_for(is_inbox_post, time.monotonic())
        if fault is None:
            return await handler(request)
        fault.hits += 1
        self.fault_responses[fault.fault.kind.value] += 1
        kind = fault.fault.kind
        if kind is FaultKind.REFUSE:
            if transport is not None:
                transport.abort()
            return web.Response(status=503)
        if kind is FaultKind.SLOW_BODY:
            answered = await handler(request)
            # A slow_body fault with an error status trickles an error page instead of the
            # handler's answer (a client reads an error body; it may leave a 2xx body unread).
            status = answered.status if fault.fault.status < 300 else fault.fault.status
            return await self._slow_response(request, status, fault.fault)
        if kind is FaultKind.FAIL_FIRST:
            fault.remaining -= 1
        headers = {"Retry-After": fault.fault.retry_after} if fault.fault.retry_after else None
        return web.Response(status=fault.fault.status, headers=headers, text="fault injected\n")

    async def _slow_response(
        self, request: web.Request, status: int, fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=status,
            headers={"Content-Type": "text/plain", "Content-Length": str(fault.body_bytes)},
        )
        await response.prepare(request)
        try:
            for _ in range(fault.body_bytes):
                if self._stopping:
                    break
                await asyncio.sleep(fault.byte_interval)
                await response.write(b".")
        except (ConnectionError, RuntimeError):
            return response
        return response

    async def _webfinger(self, request: web.Request) -> web.StreamResponse:
        host = request[_HOST_KEY]
        resource_name = request.query.get("resource", "")
        handle: str | None = None
        if resource_name.startswith("acct:"):
            user, _, domain = resource_name[5:].rpartition("@")
            if domain == host.domain:
                handle = user
        elif resource_name.startswith(f"{host.base_url}/users/"):
            handle = resource_name.rsplit("/", 1)[-1]
        document = host.webfinger(handle) if handle else None
        if document is None:
            return _problem(404, "Not Found", f"no account {resource_name!r} here")
        return _json(document, "application/jrd+json")

    async def _nodeinfo_links(self, request: web.Request) -> web.StreamResponse:
        host = request[_HOST_KEY]
        return _json(
            {
                "links": [
                    {
                        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                        "href": f"{host.base_url}/nodeinfo/2.0",
                    }
                ]
            },
            "application/json",
        )

    async def _nodeinfo(self, request: web.Request) -> web.StreamResponse:
        return _json(request[_HOST_KEY].nodeinfo(), "application/json")

    async def _instance_actor(self, request: web.Request) -> web.StreamResponse:
        actor = request[_HOST_KEY].instance_actor
        assert actor is not None
        return _json(actor.document())

    async def _actor(self, request: web.Request) -> web.StreamResponse:
        actor = request[_HOST_KEY].actors.get(request.match_info["handle"])
        if actor is None:
            return _problem(404, "Not Found", "no such actor")
        if actor.gone:
            return _problem(410, "Gone", "this account was deleted")
        return _json(actor.document())

    async def _status(self, request: web.Request) -> web.StreamResponse:
        host = request[_HOST_KEY]
        note = host.objects.get(f"{host.base_url}{request.path}")
        if note is None:
            return _problem(404, "Not Found", "no such status")
        if note.get("type") == "Tombstone":
            return _json(note, status=410)
        return _json(note)

    async def _empty(self, request: web.Request) -> web.StreamResponse:
        host = request[_HOST_KEY]
        return _json(
            {
                "@context": ACTIVITY_STREAMS,
                "id": f"{host.base_url}{request.path}",
                "type": "OrderedCollection",
                "totalItems": 0,
                "orderedItems": [],
            }
        )

    async def _inbox(self, request: web.Request) -> web.StreamResponse:
        host = request[_HOST_KEY]
        handle = request.match_info.get("handle")
        if handle is not None:
            actor = host.actors.get(handle)
            if actor is None:
                return _problem(404, "Not Found", "no such actor")
            if actor.gone:
                return _problem(410, "Gone", "this account was deleted")
        body = await request.read()
        inbox_url = f"{host.base_url}{request.path}"
        activity = _parse_activity(body)
        activity_id = _string(activity.get("id")) if activity else None
        activity_type = _string(activity.get("type")) if activity else None
        actor_id = _actor_id(activity.get("actor")) if activity else None
        failure: str | None = None
        key_id: str | None = None
        unsupported_scheme = False
        try:
            verified = await self.verifier.verify(
                request.method, request.raw_path, request.headers, body
            )
            key_id = verified.parameters.key_id
            if activity is None:
                failure = "body is not a JSON object"
            elif verified.owner is not None and verified.owner != actor_id:
                failure = f"signed by {verified.owner}, but the activity's actor is {actor_id}"
        except UnsupportedSignatureScheme as error:
            failure, unsupported_scheme = str(error), True
        except SignatureError as error:
            failure = str(error)
        self.log.record(
            Arrival(
                activity_id=activity_id,
                activity_type=activity_type,
                inbox_url=inbox_url,
                host=host.domain,
                arrived_at=time.monotonic(),
                verified=failure is None,
                failure=failure,
                key_id=key_id,
                actor=actor_id,
                activity=activity if self.keep_activity_bodies else None,
                unsupported_scheme=unsupported_scheme,
            )
        )
        if failure is not None:
            if activity is None and key_id is not None:
                return _problem(400, "Bad Request", failure)
            return _problem(401, "Unauthorized", failure)
        assert activity is not None
        self._settle_follow(activity, actor_id)
        return web.Response(status=202)

    def _settle_follow(self, activity: dict[str, Any], actor_id: str | None) -> None:
        if activity.get("type") not in ("Accept", "Reject"):
            return
        target = activity.get("object")
        follow_id = _string(target.get("id")) if isinstance(target, dict) else _string(target)
        state = self._follows.get(follow_id or "")
        if state is None or state.target != actor_id:
            return
        if activity["type"] == "Accept":
            state.accepted = True
        else:
            state.rejected = True
        self._unsettled_follows.discard(state.follow_id)

    # -- HTTP client -------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise FleetError("the fleet is not running")
        return self._session

    def _fetching_actor(self) -> FleetActor:
        for host in self.hosts:
            if host.instance_actor is not None:
                return host.instance_actor
        raise FleetError("the fleet has no hosts")

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        """GET a JSON document, signed by an instance actor as Mastodon signs its fetches."""
        signer = self._fetching_actor()
        headers = sign_request(
            method="GET", url=url, private_key=signer.key.private_key, key_id=signer.key_id
        )
        headers["Accept"] = _ACCEPT_ACTIVITY
        async with self._client().get(URL(url, encoded=True), headers=headers) as response:
            if response.status != 200:
                raise FleetError(f"GET {url} answered {response.status}")
            document = await response.json(content_type=None)
        if not isinstance(document, dict):
            raise FleetError(f"GET {url} did not return a JSON object")
        return document

    async def discover(self, relay_actor_url: str) -> RelayPeer:
        """Fetch (once) the relay actor's document to learn its inboxes."""
        peer = self._peers.get(relay_actor_url)
        if peer is not None:
            return peer
        document = await self._fetch_json(relay_actor_url)
        inbox = _string(document.get("inbox"))
        if inbox is None:
            raise FleetError(f"{relay_actor_url} has no inbox")
        endpoints = document.get("endpoints")
        shared = _string(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else None
        peer = RelayPeer(_string(document.get("id")) or relay_actor_url, inbox, shared, document)
        self._peers[relay_actor_url] = peer
        return peer

    async def send(self, actor: FleetActor, activity: dict[str, Any], inbox: str) -> SendResult:
        """POST ``activity`` to ``inbox`` signed with ``actor``'s key; HTTP errors never raise."""
        body = json.dumps(activity).encode("utf-8")
        headers = sign_request(
            method="POST",
            url=inbox,
            private_key=actor.key.private_key,
            key_id=actor.key_id,
            body=body,
        )
        headers["Content-Type"] = ACTIVITY_JSON
        try:
            async with self._client().post(
                URL(inbox, encoded=True), data=body, headers=headers
            ) as response:
                text = await response.text(errors="replace")
                return SendResult(activity, inbox, response.status, text[:2000])
        except (aiohttp.ClientError, TimeoutError) as error:
            return SendResult(activity, inbox, 0, error=f"{type(error).__name__}: {error}")

    async def send_to_relay(
        self, actor: FleetActor, relay_actor_url: str, activity: dict[str, Any]
    ) -> SendResult:
        peer = await self.discover(relay_actor_url)
        return await self.send(actor, activity, peer.delivery_inbox)

    # -- following ---------------------------------------------------------------------

    async def follow(
        self,
        relay_actor_url: str,
        actors: Sequence[FleetActor] | None = None,
        concurrency: int | None = None,
    ) -> FollowReport:
        """Every actor (or the given ones) sends a signed Follow to the relay's shared inbox."""
        peer = await self.discover(relay_actor_url)
        limit = asyncio.Semaphore(concurrency or self.send_concurrency)
        failed: dict[str, int] = {}

        async def follow_one(actor: FleetActor) -> None:
            activity = self._activity(actor, "Follow", peer.actor_id)
            state = FollowState(activity["id"], actor, peer.actor_id)
            # Registered before sending: the Accept may arrive before the POST returns.
            self._follows[state.follow_id] = state
            self._unsettled_follows.add(state.follow_id)
            async with limit:
                result = await self.send(actor, activity, peer.delivery_inbox)
            state.send_status = result.status
            if not result.ok:
                failed[state.follow_id] = result.status
                self._unsettled_follows.discard(state.follow_id)
                self.log.notify()

        targets = list(self.followers if actors is None else actors)
        await asyncio.gather(*(follow_one(actor) for actor in targets))
        return FollowReport(sent=len(targets) - len(failed), failed=failed)

    async def wait_for_accepts(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait until every successfully sent Follow was answered; return how many were accepted."""
        await self.log.wait_until(
            lambda: not self._unsettled_follows,
            timeout,
            lambda: f"{len(self._unsettled_follows)} follows still unanswered",
        )
        rejected = sum(1 for state in self._follows.values() if state.rejected)
        if rejected:
            raise FleetError(f"the relay rejected {rejected} follows")
        return sum(1 for state in self._follows.values() if state.accepted)

    async def burst(
        self,
        relay_actor_url: str,
        count: int,
        *,
        kinds: Sequence[str] = ("Like", "Follow"),
        object_id: str | None = None,
        concurrency: int = 64,
        max_seconds: float = 120.0,
    ) -> BurstReport:
        """Send ``count`` activities (cycling through ``kinds`` and through every actor) to the
        relay's shared inbox as fast as it takes them, each signed before the clock starts,
        so the measured window holds only the relay's work and the HTTP round trips.

        A Follow sent this way is not tracked for its Accept (see :meth:`follow`)."""
        if not self.followers:
            raise FleetError("the fleet has no follower actors")
        peer = await self.discover(relay_actor_url)
        inbox = peer.delivery_inbox
        target = object_id or peer.actor_id
        prepared: list[tuple[bytes, dict[str, str]]] = []
        for number in range(min(count, 200_000)):
            actor = self.followers[number % len(self.followers)]
            kind = kinds[number % len(kinds)]
            activity = self._activity(actor, kind, peer.actor_id if kind == "Follow" else target)
            body = json.dumps(activity).encode("utf-8")
            headers = sign_request(
                method="POST",
                url=inbox,
                private_key=actor.key.private_key,
                key_id=actor.key_id,
                body=body,
            )
            headers["Content-Type"] = ACTIVITY_JSON
            prepared.append((body, headers))
        statuses: Counter[str] = Counter()
        latencies: list[float] = []
        queue = iter(prepared)
        target_url = URL(inbox, encoded=True)
        started = time.monotonic()
        deadline = started + max_seconds

        async def sender() -> None:
            for body, headers in queue:
                if time.monotonic() > deadline:
                    statuses["not sent (time limit)"] += 1
                    continue
                sent_at = time.monotonic()
                statuses[await self._post_once_more_if_dropped(target_url, body, headers)] += 1
                latencies.append(time.monotonic() - sent_at)

        resent_before = self._resent
        await asyncio.gather(*(sender() for _ in range(max(1, concurrency))))
        return BurstReport(
            sent=len(prepared),
            statuses=dict(statuses),
            started_at=started,
            seconds=time.monotonic() - started,
            latencies=sorted(latencies),
            resent=self._resent - resent_before,
        )

    async def _post_once_more_if_dropped(
        self, url: URL, body: bytes, headers: dict[str, str]
    ) -> str:
        """POST and return the status (or the error's name). A keep-alive connection the
        relay closed while it sat in the pool (signing a burst takes longer than the
        server's idle timeout) fails at once; like a real server's delivery queue, the
        fleet sends that request again, once, on a fresh connection."""
        for attempt in range(2):
            try:
                async with self._client().post(url, data=body, headers=headers) as response:
                    await response.read()
                    return str(response.status)
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
                if attempt == 1:
                    return type(error).__name__
                self._resent += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                return type(error).__name__
        raise AssertionError("unreachable")

    @property
    def follows_accepted(self) -> int:
        return sum(1 for state in self._follows.values() if state.accepted)

    @property
    def follows_unanswered(self) -> int:
        return len(self._unsettled_follows)

    def follow_of(self, actor: FleetActor) -> FollowState | None:
        for state in reversed(list(self._follows.values())):
            if state.actor is actor:
                return state
        return None

    async def unfollow(self, actor: FleetActor, relay_actor_url: str) -> SendResult:
        state = self.follow_of(actor)
        if state is None:
            raise FleetError(f"{actor.id} never followed anyone")
        follow = {
            "id": state.follow_id,
            "type": "Follow",
            "actor": actor.id,
            "object": state.target,
        }
        return await self.undo(actor, relay_actor_url, follow)

    # -- other activities --------------------------------------------------------------

    def _activity(
        self, actor: FleetActor, kind: str, object_value: Any, **extra: Any
    ) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "@context": ACTIVITY_STREAMS,
            "id": f"{actor.host.base_url}/activities/{kind.lower()}-{uuid.uuid4().hex}",
            "type": kind,
            "actor": actor.id,
            "object": object_value,
        }
        activity.update(extra)
        return activity

    async def like(self, actor: FleetActor, relay_actor_url: str, object_id: str) -> SendResult:
        return await self.send_to_relay(
            actor, relay_actor_url, self._activity(actor, "Like", object_id)
        )

    async def announce(self, actor: FleetActor, relay_actor_url: str, object_id: str) -> SendResult:
        activity = self._activity(
            actor,
            "Announce",
            object_id,
            to=[PUBLIC_COLLECTION],
            cc=[f"{actor.id}/followers"],
            published=_now_iso(),
        )
        return await self.send_to_relay(actor, relay_actor_url, activity)

    async def reply(
        self,
        actor: FleetActor,
        relay_actor_url: str,
        in_reply_to: str,
        content: str = "<p>a reply</p>",
    ) -> SendResult:
        """Create a public Note replying to ``in_reply_to``; the note is served at its id."""
        peer = await self.discover(relay_actor_url)
        note_id = f"{actor.id}/statuses/{uuid.uuid4().hex}"
        note: dict[str, Any] = {
            "@context": ACTIVITY_STREAMS,
            "id": note_id,
            "type": "Note",
            "attributedTo": actor.id,
            "inReplyTo": in_reply_to,
            "content": content,
            "published": _now_iso(),
            "to": [PUBLIC_COLLECTION],
            "cc": [f"{actor.id}/followers", peer.actor_id],
            "tag": [{"type": "Mention", "href": peer.actor_id}],
        }
        actor.host.objects[note_id] = note
        embedded = {key: value for key, value in note.items() if key != "@context"}
        activity = self._activity(
            actor, "Create", embedded, to=note["to"], cc=note["cc"], published=note["published"]
        )
        return await self.send(actor, activity, peer.delivery_inbox)

    async def undo(
        self, actor: FleetActor, relay_actor_url: str, activity: dict[str, Any]
    ) -> SendResult:
        inner = {key: value for key, value in activity.items() if key != "@context"}
        return await self.send_to_relay(
            actor, relay_actor_url, self._activity(actor, "Undo", inner)
        )

    async def delete(self, actor: FleetActor, relay_actor_url: str, object_id: str) -> SendResult:
        """Delete one of the actor's notes; its URL then answers 410 with a Tombstone."""
        tombstone = {"id": object_id, "type": "Tombstone"}
        if object_id in actor.host.objects:
            actor.host.objects[object_id] = {"@context": ACTIVITY_STREAMS, **tombstone}
        activity = self._activity(actor, "Delete", tombstone, to=[PUBLIC_COLLECTION])
        return await self.send_to_relay(actor, relay_actor_url, activity)

    async def delete_actor(self, actor: FleetActor, relay_actor_url: str) -> SendResult:
        """Send the account's self-Delete, then answer 410 for the actor from then on."""
        activity = self._activity(actor, "Delete", actor.id, to=[PUBLIC_COLLECTION])
        result = await self.send_to_relay(actor, relay_actor_url, activity)
        actor.gone = True
        return result

    async def move(self, actor: FleetActor, relay_actor_url: str, target: FleetActor) -> SendResult:
        """Move ``actor`` to ``target``: target lists it in alsoKnownAs, it gets movedTo."""
        if actor.id not in target.also_known_as:
            target.also_known_as.append(actor.id)
        actor.moved_to = target.id
        activity = self._activity(actor, "Move", actor.id, target=target.id)
        return await self.send_to_relay(actor, relay_actor_url, activity)


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed * 2 + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


def _local_address(transport: asyncio.BaseTransport) -> str | None:
    sockname = transport.get_extra_info("sockname")
    return sockname[0] if sockname else None


def _json(
    document: dict[str, Any], content_type: str = ACTIVITY_JSON, status: int = 200
) -> web.Response:
    return web.Response(
        body=json.dumps(document).encode("utf-8"), status=status, content_type=content_type
    )


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return _json(body, "application/problem+json", status)


def _parse_activity(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _actor_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return _string(value.get("id"))
    return _string(value)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    from bench.harness.fleet_control import main

    main()
