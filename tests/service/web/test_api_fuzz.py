"""No request to the admin or webhook API, however malformed, makes the relay answer 5xx.

schemathesis generates requests from the relay's own OpenAPI schema for every operation
under /api/admin and /hooks (with the admin token) and sends them to a relay running as a
real process (fresh SQLite database, private Redis). A few examples per operation keep this
within about 30 s; `make drills` runs the same with 25 examples per operation. The inputs
that once caused a 500 are pinned below as plain regression tests.
"""

from __future__ import annotations

import httpx
import pytest

from bench.fuzz_api import fuzz


@pytest.mark.slow
async def test_generated_requests_never_get_a_server_error() -> None:
    result = await fuzz(max_examples=3, time_limit=60.0)

    assert result["server_errors_reported"] == 0, result.get("failures")
    assert result["verdict"] == "pass", result.get("output_tail")


async def test_a_follower_list_offset_beyond_64_bits_is_a_validation_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await client.post("/api/admin/accounts", json={"handle": "news"}, headers=admin_headers)

    response = await client.get(
        "/api/admin/accounts/news/followers", params={"offset": 2**66}, headers=admin_headers
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
