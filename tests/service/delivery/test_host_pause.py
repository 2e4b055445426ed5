"""Pausing a destination host holds its deliveries without failing them; resuming releases them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from service.accounts.store import AccountStore
from service.db.models import DestinationHost
from service.delivery.store import claim_due_sync
from service.publishing.activity_records import publish_activity

INBOX = "https://paused.example/inbox"


async def publish_one(database) -> int:
    async with database.transaction() as session:
        account = await AccountStore(session).create("blog")
        published = await publish_activity(
            session,
            account,
            {"id": "http://relay.test/activities/1", "type": "Create"},
            audience=[INBOX],
        )
    return published.activity_row_id


async def claimable(database, activity_id: int) -> int:
    async with database.transaction() as session:
        claimed = await session.run_sync(
            lambda sync: claim_due_sync(
                sync, [activity_id], limit=10, lease_seconds=60, now=datetime.now(UTC)
            )
        )
        await session.rollback()
    return len(claimed)


async def test_pausing_a_host_records_it_as_paused(client, admin_headers, database):
    response = await client.post("/api/admin/hosts/Paused.Example/pause", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"host": "paused.example", "paused": True}
    async with database.session() as session:
        host = await session.scalar(
            select(DestinationHost).where(DestinationHost.host == "paused.example")
        )
    assert host is not None and host.paused


async def test_deliveries_to_a_paused_host_are_not_claimed(client, admin_headers, database):
    activity_id = await publish_one(database)
    await client.post("/api/admin/hosts/paused.example/pause", headers=admin_headers)
    assert await claimable(database, activity_id) == 0


async def test_resuming_a_host_makes_its_deliveries_claimable_again(
    client, admin_headers, database
):
    activity_id = await publish_one(database)
    await client.post("/api/admin/hosts/paused.example/pause", headers=admin_headers)
    response = await client.post("/api/admin/hosts/paused.example/resume", headers=admin_headers)
    assert response.json() == {"host": "paused.example", "paused": False, "activities": 1}
    assert await claimable(database, activity_id) == 1


async def test_pausing_needs_the_admin_token(client):
    response = await client.post("/api/admin/hosts/paused.example/pause")
    assert response.status_code == 401


def test_cli_pauses_and_resumes_a_host(database, monkeypatch):
    import json

    from typer.testing import CliRunner

    from service.cli.commands import app
    from service.runtime.settings import get_settings

    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.delenv("FEDIRELAY_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        paused = runner.invoke(app, ["queue", "pause-host", "paused.example", "--json"])
        assert json.loads(paused.output)["paused"] is True
        resumed = runner.invoke(app, ["queue", "resume-host", "paused.example", "--json"])
        assert json.loads(resumed.output)["paused"] is False
    finally:
        get_settings.cache_clear()
