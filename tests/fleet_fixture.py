"""The `fleet` fixture: two fake fediverse servers on loopback with three actors each.

Loaded with `pytest_plugins = ("tests.fleet_fixture",)` by the federation tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.harness.fleet import Fleet


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with Fleet(hosts=2, followers=3, key_pool_size=4) as running:
        yield running
