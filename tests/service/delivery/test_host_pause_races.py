"""Pausing or resuming a host the relay has never seen is safe under concurrent requests."""

from __future__ import annotations

import asyncio

import httpx


async def test_concurrent_pauses_of_a_new_host_all_succeed(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(f"/api/admin/hosts/{action}.example/{action}", headers=admin_headers)
            for action in ["pause", "resume"] * 4
        )
    )

    assert [r.status_code for r in responses] == [200] * 8


async def test_concurrent_resumes_of_one_new_host_leave_it_resumed(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/admin/hosts/0/resume", headers=admin_headers) for _ in range(8))
    )

    assert {r.status_code for r in responses} == {200}
    listed = await client.get("/api/admin/monitoring/hosts/0", headers=admin_headers)
    assert listed.status_code == 200
    assert listed.json()["paused"] is False
