"""No request to the admin or webhook API, however malformed, makes the relay answer 5xx.

schemathesis generates requests from the relay's own OpenAPI schema for every operation
under /api/admin and /hooks (with the admin token) and sends them to a relay running as a
real process (fresh SQLite database, private Redis). A few examples per operation keep this
within about 30 s; `make drills` runs the same with 25 examples per operation.
"""

from __future__ import annotations

import pytest

from bench.fuzz_api import fuzz

pytestmark = pytest.mark.slow


async def test_generated_requests_never_get_a_server_error() -> None:
    result = await fuzz(max_examples=3, time_limit=60.0)

    assert result["server_errors_reported"] == 0, result.get("output_tail")
    assert result["verdict"] == "pass", result.get("output_tail")
