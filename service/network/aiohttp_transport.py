"""An httpx transport that sends through an aiohttp session.

httpx stays the client API (requests, responses, streaming, the mock transport in tests);
aiohttp carries the bytes. httpcore's pool spends most of a request's CPU on pool
bookkeeping once many requests to many hosts are in flight (encode/httpx#3215): fetching
10,000 follower actor documents from 1,000 hosts ran about three times slower through it
than through aiohttp on the same loopback fleet (docs/benchmarks.md, "Follow handshakes").
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import httpx

from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_aiohttp_connector,
)

CHUNK_SIZE: Final = 65_536


class _AiohttpBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self._read_timeout):
                    chunk = await self._response.content.read(CHUNK_SIZE)
            except TimeoutError as error:
                raise httpx.ReadTimeout("reading the body timed out") from error
            except aiohttp.ClientError as error:
                raise httpx.ReadError(str(error) or type(error).__name__) from error
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        # A body read to the end hands the connection back to the pool; one left unread is
        # closed rather than drained.
        self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Connections only to addresses the policy permits (checked at resolution, so the
    check and the connection agree); no proxies; redirects are the caller's business."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 100,
        per_host: int = 8,
    ) -> None:
        self._policy = policy
        self._ssl = verify
        self._max_connections = max_connections
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = guarded_aiohttp_connector(
                self._policy,
                limit=self._max_connections,
                limit_per_host=self._per_host,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                # httpx decodes Content-Encoding itself, from the headers passed on.
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        connect = timeouts.get("connect")
        read = timeouts.get("read")
        body = await request.aread()
        try:
            response = await self._session_now().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read),
            )
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ForbiddenAddressError):
                raise error.os_error from error
            raise httpx.ConnectError(str(error) or type(error).__name__) from error
        except ForbiddenAddressError:
            raise
        except TimeoutError as error:
            if isinstance(error, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout("connecting timed out") from error
            raise httpx.ReadTimeout("no answer in time") from error
        except aiohttp.ClientError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__) from error
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_AiohttpBody(response, read),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
