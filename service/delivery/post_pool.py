"""A lean HTTP/1.1 keep-alive client for inbox POSTs: asyncio Protocols and httptools.

Fan-out sends one small signed POST per inbox and needs three things from the answer: the
status, `Retry-After`, and the start of an error body. A general client (aiohttp) spends more
Python per request on what fan-out never uses (cookies, redirects, decompression, tracing,
stream readers) than on the request itself; here a request is one write of ready bytes and
the answer is parsed in C by `httptools`, with one future and one timer per request.

Connections are pooled per (scheme, host, port) and kept alive 60 s. Names are resolved by
the pool and every address is checked with the `AddressPolicy` before it is connected to:
the address checked is the address connected to, so a second DNS answer cannot steer a
connection into the network (see `service.network.guarded_connections`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import quote, urlsplit

import httptools

from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    ResolvedAddress,
    resolve_checked,
)

IDLE_TIMEOUT: Final = 60.0
DNS_TTL: Final = 300.0
# A body this small is read to the end so the connection can carry the next request; a
# longer one costs more than a new connection.
DRAIN_LIMIT: Final = 64 * 1024
# Once the answer is known, the rest of the body is drained to keep the connection only if it
# arrives this soon; a server trickling it would otherwise hold a per-host slot for the
# whole total timeout, and with it the next deliveries to that host.
DRAIN_GRACE: Final = 1.0
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PATH_SAFE: Final = "/%:@!$&'()*+,;=?~"

Origin = tuple[str, str, int]


class ConnectionClosed(OSError):
    """The server closed the connection before its answer was complete."""


class InvalidResponse(OSError):
    """The server's answer is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's requests go and what their request line and Host field say."""

    origin: Origin
    host_field: str
    request_target: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None
    body_start: bytes


@functools.lru_cache(maxsize=4096)
def target_of(url: str) -> Target:
    """The URL (already checked by `federation.peers.addresses.check_url`) as a request target."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")  # raises UnicodeError if it cannot be
    port = parts.port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_field = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # The request line is ASCII: characters outside it are sent percent-encoded (existing
    # escapes and reserved characters stay as they are), as browsers and aiohttp send them.
    return Target((scheme, host, port), host_field, quote(path, safe=_PATH_SAFE))


def encode_post(target: Target, fields: dict[str, str], body: bytes, user_agent: str) -> bytes:
    """The whole request in one buffer, so it leaves in one write."""
    lines = [
        f"POST {target.request_target} HTTP/1.1",
        f"Host: {target.host_field}",
        f"User-Agent: {user_agent}",
        f"Content-Length: {len(body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in fields.items())
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


class _Exchange:
    """One request's answer as the parser sees it; the connection's parser callbacks land here."""

    __slots__ = (
        "answered",
        "body_seen",
        "complete",
        "done",
        "headers_done",
        "interim",
        "keep_alive",
        "retry_after",
        "snippet",
        "snippet_cap",
        "status",
        "too_long",
    )

    def __init__(self, done: asyncio.Future[Answer], snippet_cap: int) -> None:
        self.done = done
        self.snippet_cap = snippet_cap
        self.answered = False
        self.headers_done = False
        self.complete = False
        self.interim = False
        self.keep_alive = False
        self.too_long = False
        self.status = 0
        self.retry_after: str | None = None
        self.snippet = b""
        self.body_seen = 0

    def answer(self) -> None:
        if not self.answered:
            self.answered = True
            if not self.done.done():
                self.done.set_result(Answer(self.status, self.retry_after, self.snippet))

    def fail(self, error: BaseException) -> None:
        if not self.answered:
            self.answered = True
            if not self.done.done():
                self.done.set_exception(error)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request at a time, in its parser's order."""

    def __init__(self, pool: InboxConnections, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.reused = False
        self.received = False
        self.idle_since = 0.0
        self.last_data = 0.0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's do not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            # Nothing was asked: whatever this is, the connection cannot be trusted any more.
            self.close()
            return
        self.received = True
        self.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            exchange.fail(InvalidResponse(f"invalid HTTP response: {error}"))
            self.close()
            return
        if exchange.complete:
            exchange.answer()
            self._finish(reusable=exchange.keep_alive)
        elif exchange.too_long and exchange.answered:
            self._finish(reusable=False)

    def eof_received(self) -> bool:
        self._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if len(name) == 11 and name.lower() == b"retry-after":
            exchange.retry_after = value.decode("latin-1").strip()
        elif len(name) == 14 and name.lower() == b"content-length":
            with contextlib.suppress(ValueError):
                exchange.too_long = int(value) > DRAIN_LIMIT

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue): the real one follows on the same stream.
            exchange.interim = True
            exchange.retry_after = None
            exchange.too_long = False
            return
        exchange.status = status
        exchange.headers_done = True
        if 200 <= status < 300:
            # A success body is never read by anyone: the answer is known now, and the body
            # is only drained to keep the connection.
            exchange.answer()
            self._limit_drain()

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        exchange.body_seen += len(body)
        if exchange.body_seen > DRAIN_LIMIT:
            exchange.too_long = True
        room = exchange.snippet_cap - len(exchange.snippet)
        if room > 0 and not exchange.answered:
            exchange.snippet += body[:room]
            if len(exchange.snippet) >= exchange.snippet_cap:
                exchange.answer()
                self._limit_drain()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if exchange.interim:
            exchange.interim = False
            return
        exchange.complete = True
        # Read here: the parser forgets it once the message is over. HTTP/1.0 servers that
        # offer keep-alive are rare enough not to be worth trusting.
        parser = self.parser
        exchange.keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"

    # -- requests ----------------------------------------------------------------------

    def send(self, request: bytes, deadline: float, snippet_cap: int) -> asyncio.Future[Answer]:
        done: asyncio.Future[Answer] = self.loop.create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            done.set_exception(ConnectionClosed("server closed the connection before answering"))
            return done
        self.exchange = _Exchange(done, snippet_cap)
        self.received = False
        now = self.loop.time()
        self.last_data = now
        self.deadline = deadline
        self.timer = self.loop.call_at(
            min(deadline, now + self.pool.read_timeout), self._check_time
        )
        self.transport.write(request)
        return done

    def _limit_drain(self) -> None:
        now = self.loop.time()
        if self.deadline <= now + DRAIN_GRACE:
            return
        self.deadline = now + DRAIN_GRACE
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.deadline, self._check_time)

    def _check_time(self) -> None:
        self.timer = None
        exchange = self.exchange
        if exchange is None:
            return
        now = self.loop.time()
        next_check = min(self.deadline, self.last_data + self.pool.read_timeout)
        if next_check - now > 0.005:
            self.timer = self.loop.call_at(next_check, self._check_time)
            return
        exchange.fail(TimeoutError())
        self.close()

    def _finish(self, *, reusable: bool) -> None:
        self.exchange = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if reusable and not self.closed:
            self.pool._give_back(self)
        else:
            self.close()

    def _lost(self, exc: Exception | None) -> None:
        exchange = self.exchange
        if exchange is not None:
            if exchange.headers_done:
                # Read until close, or cut short after the status line: either way the
                # server answered, and the status is what counts.
                exchange.answer()
            else:
                error = ConnectionClosed("server closed the connection before answering")
                if exc is not None:
                    error.__cause__ = exc
                exchange.fail(error)
        self.close()

    def close(self) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.fail(ConnectionClosed("connection closed before the answer was complete"))
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool._forget(self)

    def abort(self) -> None:
        """Close at once, without waiting for buffered bytes (the request was abandoned)."""
        if self.transport is not None:
            self.transport.abort()
        self.close()


class InboxConnections:
    """Keep-alive connections to inbox servers: at most `per_host` per origin and `limit`
    in all, idle ones closed after `idle_timeout` seconds."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        limit: int,
        per_host: int,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        idle_timeout: float = IDLE_TIMEOUT,
        dns_ttl: float = DNS_TTL,
    ) -> None:
        self.policy = policy
        self.limit = max(1, limit)
        self.per_host = max(1, per_host)
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.dns_ttl = dns_ttl
        self._idle: dict[Origin, list[_Connection]] = {}
        # Every idle connection, oldest first: the sweep stops at the first young one.
        self._idle_order: dict[_Connection, None] = {}
        self._open: dict[Origin, int] = {}
        self._connections: set[_Connection] = set()
        self._total = 0
        self._waiters: deque[tuple[Origin, asyncio.Future[None]]] = deque()
        self._addresses: dict[tuple[str, int], tuple[float, list[ResolvedAddress]]] = {}
        self._resolving: dict[tuple[str, int], asyncio.Future[list[ResolvedAddress]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def send(
        self, origin: Origin, request: bytes, *, deadline: float, snippet_cap: int
    ) -> Answer:
        """Send one request and wait for its answer until the loop time `deadline`.

        Raises `ForbiddenAddressError` for a refused address, `TimeoutError`, or another
        `OSError` for connection failures.
        """
        connection = await self._acquire(origin, deadline, fresh=False)
        try:
            return await self._exchange(connection, request, deadline, snippet_cap)
        except ConnectionClosed:
            if not connection.reused or connection.received:
                raise
        # The server closed an idle connection as the request went out; nothing of it was
        # processed, so it goes once more on a new connection.
        connection = await self._acquire(origin, deadline, fresh=True)
        return await self._exchange(connection, request, deadline, snippet_cap)

    async def _exchange(
        self, connection: _Connection, request: bytes, deadline: float, snippet_cap: int
    ) -> Answer:
        done = connection.send(request, deadline, snippet_cap)
        try:
            return await done
        except asyncio.CancelledError:
            connection.abort()
            raise

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._connections):
            connection.close()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionClosed("connection pool closed"))
        self._waiters.clear()
        # Let the transports deliver their close before the loop may go away.
        await asyncio.sleep(0)

    # -- connections -------------------------------------------------------------------

    async def _acquire(self, origin: Origin, deadline: float, *, fresh: bool) -> _Connection:
        if self._closed:
            raise ConnectionClosed("connection pool closed")
        loop = asyncio.get_running_loop()
        if not fresh:
            connection = self._take_idle(origin, loop.time())
            if connection is not None:
                return connection
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self.connect_timeout)):
                while not self._room_for(origin):
                    if self._total >= self.limit and self._evict_idle(origin):
                        continue
                    await self._wait(origin)
                    if self._closed:
                        raise ConnectionClosed("connection pool closed")
                    if not fresh:
                        connection = self._take_idle(origin, loop.time())
                        if connection is not None:
                            return connection
                self._count(origin, 1)
                try:
                    return await self._connect(origin)
                except BaseException:
                    self._count(origin, -1)
                    self._wake()
                    raise
        except TimeoutError:
            raise TimeoutError(f"connecting to {origin[1]} timed out") from None

    async def _wait(self, origin: Origin) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (origin, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _take_idle(self, origin: Origin, now: float) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not idle:
                del self._idle[origin]
            del self._idle_order[connection]
            if now - connection.idle_since < self.idle_timeout and not connection.closed:
                connection.reused = True
                return connection
            connection.close()
            idle = self._idle.get(origin)
        return None

    def _room_for(self, origin: Origin) -> bool:
        return self._total < self.limit and self._open.get(origin, 0) < self.per_host

    def _count(self, origin: Origin, delta: int) -> None:
        count = self._open.get(origin, 0) + delta
        if count > 0:
            self._open[origin] = count
        else:
            self._open.pop(origin, None)
        self._total += delta

    def _evict_idle(self, origin: Origin) -> bool:
        """Close the oldest idle connection to another origin, to make room under `limit`."""
        for connection in self._idle_order:
            if connection.origin != origin:
                connection.close()
                return True
        return False

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            context = self.ssl_context
        last_error: OSError | None = None
        for candidate in await self._resolve(host, port):
            # Checked again here, against the very address about to be connected to.
            if not self.policy.permits(candidate.address):
                raise ForbiddenAddressError(host, candidate.address)
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self, origin),
                    candidate.address,
                    port,
                    family=candidate.family,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
            except OSError as error:
                last_error = error
                continue
            if not protocol.closed:
                self._connections.add(protocol)
            return protocol
        assert last_error is not None
        raise last_error

    async def _resolve(self, host: str, port: int) -> list[ResolvedAddress]:
        key = (host, port)
        loop = asyncio.get_running_loop()
        cached = self._addresses.get(key)
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        pending = self._resolving.get(key)
        if pending is not None:
            # Shielded: one caller giving up must not cancel the others' resolution.
            return await asyncio.shield(pending)
        pending = loop.create_future()
        self._resolving[key] = pending
        try:
            addresses = await resolve_checked(host, port, self.policy)
        except asyncio.CancelledError:
            pending.set_exception(TimeoutError(f"resolving {host} timed out"))
            pending.exception()
            raise
        except BaseException as error:
            pending.set_exception(error)
            pending.exception()
            raise
        else:
            pending.set_result(addresses)
            self._addresses[key] = (loop.time() + self.dns_ttl, addresses)
            return addresses
        finally:
            del self._resolving[key]

    # -- called by connections ---------------------------------------------------------

    def _give_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = connection.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_order[connection] = None
        if self._sweeper is None:
            self._sweeper = connection.loop.call_later(self.idle_timeout / 2, self._sweep)
        self._wake(connection.origin)

    def _forget(self, connection: _Connection) -> None:
        if connection in self._idle_order:
            del self._idle_order[connection]
            idle = self._idle[connection.origin]
            idle.remove(connection)
            if not idle:
                del self._idle[connection.origin]
        if connection.transport is not None:
            self._count(connection.origin, -1)
        self._connections.discard(connection)
        self._wake()

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self._idle_order):
            if now - connection.idle_since < self.idle_timeout:
                break
            connection.close()
        expired = [key for key, (until, _) in self._addresses.items() if until <= now]
        for key in expired:
            del self._addresses[key]
        if self._idle_order and not self._closed:
            self._sweeper = loop.call_later(self.idle_timeout / 2, self._sweep)

    def _wake(self, origin: Origin | None = None) -> None:
        # Waiting is rare (the engine holds per-host slots of the same size), so a scan is
        # cheaper than keeping a queue per origin. Everyone who might go is woken; each
        # checks again.
        if not self._waiters:
            return
        evictable = self._total >= self.limit and bool(self._idle_order)
        for waiting_for, waiter in self._waiters:
            if waiter.done():
                continue
            if waiting_for == origin or evictable or self._room_for(waiting_for):
                waiter.set_result(None)
