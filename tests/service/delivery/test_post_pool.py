"""The inbox POST client against real loopback servers: keep-alive, framing, limits, TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from service.delivery import post_pool as connection_pool
from service.delivery import signed_posts
from service.delivery.post_pool import InboxConnections
from service.delivery.signed_posts import (
    USER_AGENT,
    InboxPoster,
    PreparedActivity,
    inbox_connections,
)
from service.network.guarded_connections import AddressPolicy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def activity() -> PreparedActivity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = {"id": "https://relay.test/activities/1", "type": "Create"}
    return PreparedActivity.build(1, document, "https://relay.test/actor#main-key", key)


@asynccontextmanager
async def poster_for(
    *, per_host: int = 8, test_mode: bool = True, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[InboxPoster]:
    connections = inbox_connections(
        test_mode=test_mode, concurrency=32, per_host=per_host, ssl_context=ssl_context
    )
    try:
        yield InboxPoster(connections, test_mode=test_mode)
    finally:
        await connections.close()


class RawServer:
    """An asyncio server speaking whatever bytes the test hands it, counting connections."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @classmethod
    def trickling(cls, status_line: bytes) -> RawServer:
        """Answers every request with `status_line` and a 100-byte body, a byte per 0.1 s."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(status_line + b"\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):
                await asyncio.sleep(0.1)
                writer.write(b".")
                await writer.drain()

        server = cls(handler)
        return server

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


@asynccontextmanager
async def aiohttp_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/inbox", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"{'[' + host + ']' if ':' in host else host}:{port}"
    finally:
        await runner.cleanup()


async def test_keep_alive_reuses_one_connection(activity: PreparedActivity) -> None:
    peers: set[object] = set()
    seen: list[web.Request] = []

    async def inbox(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        seen.append(request)
        assert await request.read() == activity.body
        return web.Response(status=202)

    async with aiohttp_server(inbox) as address, poster_for() as poster:
        for _ in range(5):
            result = await poster.post(f"http://{address}/inbox?page=1", activity)
            assert (result.status, result.error, result.forbidden) == (202, None, False)

    assert len(peers) == 1
    request = seen[0]
    assert request.headers["Host"] == address
    assert request.path_qs == "/inbox?page=1"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Length"] == str(len(activity.body))
    assert request.headers["Digest"] == activity.digest
    assert "keyId=" in request.headers["Signature"]


async def test_chunked_error_body_is_kept_and_the_connection_reused(
    activity: PreparedActivity,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"6\r\nbroken\r\n7\r\n inside\r\n0\r\n\r\n"
            )
            await writer.drain()

    async with RawServer(handler) as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        second = await poster.post(inbox, activity)

    assert (first.status, first.error) == (500, "HTTP 500: broken inside")
    assert second.error == "HTTP 500: broken inside"
    assert server.connections == 1


async def test_connection_close_is_honoured(activity: PreparedActivity) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        # Keep the socket open: the client must not wait for the close to reuse it.
        await asyncio.sleep(1)

    async with RawServer(handler) as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        results = [await poster.post(inbox, activity) for _ in range(3)]

    assert [r.status for r in results] == [202, 202, 202]
    assert server.connections == 3


async def test_http_1_0_answer_read_until_close(activity: PreparedActivity) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 60\r\n\r\nbusy, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"come back later")
        await writer.drain()

    async with RawServer(handler) as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        second = await poster.post(inbox, activity)

    assert (first.status, first.retry_after) == (503, "60")
    assert first.error == "HTTP 503: busy, come back later"
    assert second.status == 503
    assert server.connections == 2


async def test_a_large_error_body_is_capped_and_the_connection_closed(
    activity: PreparedActivity,
) -> None:
    body = b"x" * (200 * 1024)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()

    async with RawServer(handler) as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        second = await poster.post(inbox, activity)

    assert first.status == 400 and first.error == "HTTP 400: " + "x" * 500
    assert second.status == 400
    assert server.connections == 2


async def test_a_stale_idle_connection_is_retried_on_a_new_one(
    activity: PreparedActivity,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        if server.connections == 1:
            # The idle timeout of the server runs out just as the next request arrives.
            await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()

    async with RawServer(handler) as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        second = await poster.post(inbox, activity)

    assert (first.status, second.status, second.error) == (202, 202, None)
    assert server.connections == 2
    assert len(server.requests) == 2


async def test_a_failure_on_a_new_connection_is_not_retried(activity: PreparedActivity) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    async with RawServer(handler) as server, poster_for() as poster:
        result = await poster.post(f"http://127.0.0.1:{server.port}/inbox", activity)

    assert result.status is None and result.error is not None
    assert result.error.startswith("ConnectionClosed")
    assert not result.forbidden
    assert server.connections == 1


async def test_a_slow_body_is_cut_at_the_total_timeout(
    activity: PreparedActivity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signed_posts, "TOTAL_TIMEOUT", 0.6)

    async with (
        RawServer.trickling(b"HTTP/1.1 500 Internal Server Error") as server,
        poster_for() as poster,
    ):
        result = await poster.post(f"http://127.0.0.1:{server.port}/inbox", activity)

    assert (result.status, result.error) == (None, "timeout")
    assert 550 <= result.duration_ms < 2000


async def test_a_silent_server_hits_the_read_timeout(activity: PreparedActivity) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(5)

    connections = InboxConnections(
        AddressPolicy(allow_private=True), limit=4, per_host=2, read_timeout=0.3
    )
    async with RawServer(handler) as server:
        poster = InboxPoster(connections, test_mode=True)
        result = await poster.post(f"http://127.0.0.1:{server.port}/inbox", activity)
        await connections.close()

    assert (result.status, result.error) == (None, "timeout")
    assert result.duration_ms < 2000


async def test_a_2xx_answer_does_not_wait_for_its_body(
    activity: PreparedActivity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signed_posts, "TOTAL_TIMEOUT", 0.5)

    async with RawServer.trickling(b"HTTP/1.1 202 Accepted") as server, poster_for() as poster:
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        # The unfinished body holds the first connection, so this one needs another.
        second = await poster.post(inbox, activity)

    assert (first.status, first.error, second.status) == (202, None, 202)
    assert first.duration_ms < 400
    assert server.connections == 2


async def test_a_trickling_body_after_the_answer_frees_its_host_slot_soon(
    activity: PreparedActivity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_pool, "DRAIN_GRACE", 0.2)

    async with (
        RawServer.trickling(b"HTTP/1.1 202 Accepted") as server,
        poster_for(per_host=1) as poster,
    ):
        inbox = f"http://127.0.0.1:{server.port}/inbox"
        first = await poster.post(inbox, activity)
        # One connection per host: the second request gets it only once the first
        # connection gave up draining its body.
        second = await poster.post(inbox, activity)

    assert (first.status, second.status, second.error) == (202, 202, None)
    assert second.duration_ms < 2000
    assert server.connections == 2


async def test_429_keeps_retry_after(activity: PreparedActivity) -> None:
    async def inbox(request: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "120"})

    async with aiohttp_server(inbox) as address, poster_for() as poster:
        result = await poster.post(f"http://{address}/inbox", activity)

    assert (result.status, result.retry_after) == (429, "120")
    assert result.error == "HTTP 429: slow down"


async def test_a_name_resolving_to_a_private_address_is_refused(
    activity: PreparedActivity,
) -> None:
    arrivals: list[web.Request] = []

    async def inbox(request: web.Request) -> web.Response:
        arrivals.append(request)
        return web.Response(status=202)

    # The URL check lets the name through (test mode); the pool's address guard does not.
    connections = InboxConnections(AddressPolicy(allow_private=False), limit=4, per_host=2)
    poster = InboxPoster(connections, test_mode=True)
    async with aiohttp_server(inbox) as address:
        port = address.rsplit(":", 1)[1]
        by_name = await poster.post(f"http://localhost:{port}/inbox", activity)
        by_literal = await poster.post(f"http://{address}/inbox", activity)
    await connections.close()

    for result in (by_name, by_literal):
        assert result.forbidden and result.status is None
        assert result.error is not None and result.error.startswith("refused")
    assert arrivals == []


async def test_outside_test_mode_a_loopback_inbox_is_refused(activity: PreparedActivity) -> None:
    async with poster_for(test_mode=False) as poster:
        result = await poster.post("https://127.0.0.1:8443/inbox", activity)
    assert result.forbidden and result.error is not None and result.error.startswith("refused")


async def test_an_exempt_network_is_reachable_and_no_other(activity: PreparedActivity) -> None:
    async def inbox(request: web.Request) -> web.Response:
        return web.Response(status=202)

    policy = AddressPolicy(exempt_networks=(ipaddress.IPv4Network("127.0.0.2/32"),))
    connections = InboxConnections(policy, limit=4, per_host=2)
    poster = InboxPoster(connections, test_mode=True)
    async with aiohttp_server(inbox, "127.0.0.2") as allowed, aiohttp_server(inbox) as other:
        assert (await poster.post(f"http://{allowed}/inbox", activity)).status == 202
        assert (await poster.post(f"http://{other}/inbox", activity)).forbidden
    await connections.close()


async def test_the_per_host_limit_holds(activity: PreparedActivity) -> None:
    active = 0
    most = 0
    peers: set[object] = set()

    async def inbox(request: web.Request) -> web.Response:
        nonlocal active, most
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.1)
        active -= 1
        return web.Response(status=202)

    async with aiohttp_server(inbox) as address, poster_for(per_host=2) as poster:
        results = await asyncio.gather(
            *(poster.post(f"http://{address}/inbox", activity) for _ in range(8))
        )

    assert [r.status for r in results] == [202] * 8
    assert most == 2
    assert len(peers) == 2


async def test_the_total_limit_makes_room_by_closing_idle_connections(
    activity: PreparedActivity,
) -> None:
    async def inbox(request: web.Request) -> web.Response:
        return web.Response(status=202)

    connections = InboxConnections(AddressPolicy(allow_private=True), limit=1, per_host=1)
    poster = InboxPoster(connections, test_mode=True)
    async with aiohttp_server(inbox) as first, aiohttp_server(inbox, "127.0.0.2") as second:
        for address in (first, second, first):
            assert (await poster.post(f"http://{address}/inbox", activity)).status == 202
    await connections.close()


async def test_ipv6(activity: PreparedActivity) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")

    hosts: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        hosts.append(request.headers["Host"])
        return web.Response(status=202)

    async with aiohttp_server(inbox, "::1") as address, poster_for() as poster:
        result = await poster.post(f"http://{address}/inbox", activity)

    assert result.status == 202
    assert hosts == [address]


def _self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, pem


async def test_tls_with_sni_and_a_verified_certificate(
    activity: PreparedActivity, tmp_path: Path
) -> None:
    cert_path, key_path, pem = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    names: list[str | None] = []
    server_context.sni_callback = lambda _socket, name, _context: names.append(name)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    trusted = ssl.create_default_context(cadata=pem.decode())
    async with RawServer(handler, server_context) as server:
        port = server.port
        inbox = f"https://localhost:{port}/inbox"
        async with poster_for(ssl_context=trusted) as poster:
            results = [await poster.post(inbox, activity) for _ in range(2)]
        async with poster_for() as untrusting:
            refused = await untrusting.post(inbox, activity)

    assert [r.status for r in results] == [202, 202]
    # Both clients named the host; only the trusting one got through, and once.
    assert names == ["localhost", "localhost"]
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /inbox HTTP/1.1\r\nHost: localhost:%d\r\n" % port)
    assert refused.status is None and not refused.forbidden
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error


async def test_close_ends_idle_connections(activity: PreparedActivity) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        assert await reader.read() == b""
        closed.set()

    async with RawServer(handler) as server:
        async with poster_for() as poster:
            assert (await poster.post(f"http://127.0.0.1:{server.port}/inbox", activity)).status
        await asyncio.wait_for(closed.wait(), 2)


def test_the_same_on_uvloop(activity: PreparedActivity, tmp_path: Path) -> None:
    """The worker runs on uvloop, whose transports differ from asyncio's in small ways."""
    scenarios: list[Callable[[pytest.MonkeyPatch], Coroutine[Any, Any, None]]] = [
        lambda _: test_keep_alive_reuses_one_connection(activity),
        lambda _: test_chunked_error_body_is_kept_and_the_connection_reused(activity),
        lambda _: test_http_1_0_answer_read_until_close(activity),
        lambda _: test_a_stale_idle_connection_is_retried_on_a_new_one(activity),
        lambda patch: test_a_slow_body_is_cut_at_the_total_timeout(activity, patch),
        lambda patch: test_a_2xx_answer_does_not_wait_for_its_body(activity, patch),
        lambda _: test_the_per_host_limit_holds(activity),
        lambda _: test_tls_with_sni_and_a_verified_certificate(activity, tmp_path),
        lambda _: test_close_ends_idle_connections(activity),
    ]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for scenario in scenarios:
            # Each scenario's patches (a shortened timeout) end with it.
            with pytest.MonkeyPatch.context() as patch:
                runner.run(scenario(patch))


async def test_an_inbox_path_outside_ascii_is_sent_percent_encoded(
    activity: PreparedActivity,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as server, poster_for() as poster:
        result = await poster.post(f"http://127.0.0.1:{server.port}/users/日本/inbox", activity)

    assert result.status == 202
    assert server.requests[0].startswith(b"POST /users/%E6%97%A5%E6%9C%AC/inbox HTTP/1.1\r\n")


async def test_an_inbox_host_that_cannot_be_encoded_is_refused_for_good(
    activity: PreparedActivity,
) -> None:
    async with poster_for() as poster:
        result = await poster.post(f"http://{'x' * 64}é.example/inbox", activity)

    assert result.forbidden and result.status is None
    assert result.error is not None and result.error.startswith("refused: unusable inbox URL")
