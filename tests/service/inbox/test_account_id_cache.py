"""The inbox's handle -> account id cache forgets unknown handles quickly."""

from __future__ import annotations

from service.accounts.store import AccountStore
from service.inbox.endpoint_state import AccountIds


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_new_account_is_found_once_the_unknown_entry_expires(database):
    clock = FakeClock()
    ids = AccountIds(database, clock=clock)
    assert await ids.get("blog") is None
    async with database.transaction() as session:
        await AccountStore(session).create("blog")
    clock.now = 2.5
    assert await ids.get("blog") is not None


async def test_an_unknown_handle_is_not_looked_up_again_immediately(database):
    clock = FakeClock()
    ids = AccountIds(database, clock=clock)
    assert await ids.get("blog") is None
    async with database.transaction() as session:
        await AccountStore(session).create("blog")
    clock.now = 1.0
    assert await ids.get("blog") is None
