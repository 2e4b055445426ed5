"""Profile changes and key rotations are federated to followers as an Update of the actor."""

from __future__ import annotations

from sqlalchemy import select

from service.db.models import Activity, Delivery, Follower


async def add_follower(database, handle: str, inbox: str) -> None:
    from service.accounts.store import AccountStore

    async with database.transaction() as session:
        account = await AccountStore(session).get(handle)
        session.add(
            Follower(
                account_id=account.id,
                actor_uri="https://remote.example/users/ann",
                host="remote.example",
                inbox=inbox,
                shared_inbox=None,
            )
        )


async def updates(database) -> list[Activity]:
    async with database.session() as session:
        return list(
            (
                await session.scalars(select(Activity).where(Activity.activity_type == "Update"))
            ).all()
        )


async def test_changing_the_profile_sends_an_update_of_the_actor(client, admin_headers, database):
    await client.post("/api/admin/accounts", json={"handle": "blog"}, headers=admin_headers)
    await add_follower(database, "blog", "https://remote.example/users/ann/inbox")
    await client.patch(
        "/api/admin/accounts/blog", json={"display_name": "New name"}, headers=admin_headers
    )
    [update] = await updates(database)
    assert update.document["object"]["id"] == "http://relay.test/users/blog"
    assert update.document["object"]["name"] == "New name"
    assert update.document["cc"] == ["http://relay.test/users/blog/followers"]
    assert update.in_outbox is False
    async with database.session() as session:
        inboxes = (await session.scalars(select(Delivery.inbox))).all()
    assert inboxes == ["https://remote.example/users/ann/inbox"]


async def test_rotating_keys_sends_the_new_key_in_an_update(client, admin_headers, database):
    await client.post("/api/admin/accounts", json={"handle": "blog"}, headers=admin_headers)
    rotated = (
        await client.post("/api/admin/accounts/blog/keys/rotate", headers=admin_headers)
    ).json()
    new_rsa = next(k for k in rotated["keys"] if k["kind"] == "rsa" and not k["retired_at"])
    [update] = await updates(database)
    assert update.document["object"]["publicKey"]["publicKeyPem"] == new_rsa["public_key_pem"]


async def test_cli_update_also_sends_an_update(database, monkeypatch):
    import asyncio

    from typer.testing import CliRunner

    from service.cli.commands import app
    from service.runtime.settings import get_settings

    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.delenv("FEDIRELAY_REDIS_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        # The CLI runs its own event loop, so it runs in a thread beside the test's.
        created = await asyncio.to_thread(runner.invoke, app, ["accounts", "create", "blog"])
        assert created.exit_code == 0, created.output
        result = await asyncio.to_thread(
            runner.invoke, app, ["accounts", "update", "blog", "--name", "Renamed"]
        )
        assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    [update] = await updates(database)
    assert update.document["object"]["name"] == "Renamed"
