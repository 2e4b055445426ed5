"""Outbound connections that can only reach allowed addresses.

A host name is resolved once, every address it resolves to is checked against the guard in
`federation.peers.addresses`, and the connection is then made to a checked address. Checking
a name and letting the HTTP client resolve it again would leave a window for DNS
rebinding (a second answer pointing inside the network); here the address that was
checked is the address that is connected to, while TLS still verifies the certificate
against the host name (SNI and Host header are unchanged).

Two clients are supported:
- httpx: `guarded_httpx_client()` / `GuardedTransport`, which plug a checking network
  backend into httpcore's connection pool.
- aiohttp: `GuardedResolver` (a resolver that refuses forbidden answers) and
  `guarded_aiohttp_connector()`, which additionally checks IP literal hosts, which aiohttp
  connects to without consulting any resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from federation.peers.addresses import is_forbidden_address, parse_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ForbiddenAddressError(OSError):
    """The peer resolves to an address the relay must not connect to.

    An OSError so that clients treating connection failures uniformly (aiohttp wraps
    resolver OSErrors in `ClientConnectorDNSError`) still surface it as a connect failure.
    """

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to forbidden address {address}")
        self.host = host
        self.address = address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which resolved addresses may be connected to.

    `allow_private` (test mode) lifts the guard entirely. `exempt_networks` lifts it for
    specific networks only, so tests can reach one loopback server while every other
    special-purpose address stays refused.
    """

    allow_private: bool = False
    exempt_networks: tuple[Network, ...] = field(default=())

    def permits(self, address: str) -> bool:
        if self.allow_private:
            return True
        parsed = parse_address(address)
        if parsed is not None and any(parsed in network for network in self.exempt_networks):
            return True
        return not is_forbidden_address(address)


@dataclass(frozen=True, slots=True)
class ResolvedAddress:
    family: int
    address: str
    port: int


async def resolve_checked(
    host: str, port: int, policy: AddressPolicy, *, family: int = socket.AF_UNSPEC
) -> list[ResolvedAddress]:
    """Resolve `host` and refuse if ANY answer is forbidden (one bad answer is enough
    for an attacker who controls the zone to win a race between answers)."""
    literal = parse_address(host)
    if literal is not None:
        address_family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        resolved = [ResolvedAddress(address_family, str(literal), port)]
    else:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        resolved = []
        seen: set[str] = set()
        for info_family, _, _, _, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in seen:
                seen.add(address)
                resolved.append(ResolvedAddress(int(info_family), address, port))
        if not resolved:
            raise OSError(f"{host} did not resolve to any address")
    for candidate in resolved:
        if not policy.permits(candidate.address):
            raise ForbiddenAddressError(host, candidate.address)
    return resolved


# --- httpx -------------------------------------------------------------------------------


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to checked addresses."""

    def __init__(
        self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, self._policy)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        last_error: Exception | None = None
        for candidate in addresses:
            try:
                return await self._inner.connect_tcp(
                    candidate.address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddressError(path, "unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connections go through `GuardedNetworkBackend`."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits, trust_env=False)
        # httpx offers no public way to choose the network backend, so the pool it built
        # is replaced by an identical one that uses the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy),
        )


def guarded_httpx_client(
    policy: AddressPolicy,
    *,
    timeout: httpx.Timeout,
    verify: ssl.SSLContext | bool = True,
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client that never follows redirects itself and ignores proxy variables
    (a proxy would connect on the relay's behalf, bypassing the guard). `transport`
    replaces the httpcore one; it must guard its connections with the same policy."""
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(policy, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )


# --- aiohttp -----------------------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses names resolving to forbidden addresses.

    aiohttp connects to exactly the addresses its resolver returns, so the check and the
    connection agree.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not self._policy.permits(result["host"]):
                raise ForbiddenAddressError(host, result["host"])
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class _GuardedConnector(aiohttp.TCPConnector):
    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(policy), **kwargs)
        self._address_policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        # IP literal hosts never reach the resolver, so they are checked here.
        results = await super()._resolve_host(host, port, traces=traces)
        for result in results:
            if not self._address_policy.permits(result["host"]):
                raise ForbiddenAddressError(host, result["host"])
        return results


def guarded_aiohttp_connector(policy: AddressPolicy, **kwargs: Any) -> aiohttp.TCPConnector:
    """A TCPConnector for `aiohttp.ClientSession(connector=..., trust_env=False)` that
    checks every address it connects to; keyword arguments go to `TCPConnector`."""
    return _GuardedConnector(policy, **kwargs)
