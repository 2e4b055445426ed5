"""Request bodies are capped per kind of endpoint before any handler reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


async def chunks(total: int, size: int = 65536) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


async def test_declared_oversize_body_is_413_before_reading(
    client: httpx.AsyncClient, admin_headers
):
    response = await client.post(
        "/api/admin/accounts",
        content=b"x" * 10,
        headers={
            **admin_headers,
            "content-length": "999999999",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/body-too-large")


async def test_chunked_oversize_body_is_413(client: httpx.AsyncClient, admin_headers):
    response = await client.post(
        "/api/admin/accounts",
        content=chunks(400_000),
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_non_numeric_content_length_is_400(client: httpx.AsyncClient, admin_headers):
    response = await client.post(
        "/api/admin/accounts",
        content=b"{}",
        headers={**admin_headers, "content-length": "abc", "content-type": "application/json"},
    )
    assert response.status_code == 400
