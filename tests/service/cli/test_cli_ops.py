"""`fedirelay status`, `fedirelay hosts` and `fedirelay posts ...` on a real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from service.accounts.store import AccountStore
from service.cli.commands import app
from service.db.engine import Database
from service.db.models import Activity, Delivery, DestinationHost, Post
from service.runtime.settings import get_settings

NOW = datetime.now(UTC)


@pytest.fixture
def cli(database, monkeypatch):
    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.setenv("FEDIRELAY_BASE_URL", "https://news.example.com")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


def seed(url: str, *, states: tuple[str, ...] = ("delivered", "dead")) -> int:
    """An account, a post with one Create and a delivery per state; one failing host."""

    async def work() -> int:
        database = Database(url)
        try:
            async with database.transaction() as session:
                account = await AccountStore(session).create("news")
                post = Post(
                    account_id=account.id,
                    object_uri=f"https://news.example.com/objects/{uuid.uuid4()}",
                    source="api",
                    source_id="1",
                    document={"type": "Note"},
                    state="published",
                    published_at=NOW,
                )
                session.add(post)
                await session.flush()
                activity = Activity(
                    activity_uri=f"https://news.example.com/activities/{uuid.uuid4()}",
                    account_id=account.id,
                    post_id=post.id,
                    activity_type="Create",
                    document={},
                )
                session.add(activity)
                await session.flush()
                await session.execute(
                    insert(Delivery),
                    [
                        {
                            "activity_id": activity.id,
                            "account_id": account.id,
                            "inbox": f"https://h{n}.example/inbox",
                            "host": f"h{n}.example",
                            "state": state,
                            "attempts": 3 if state == "dead" else 1,
                            "last_status": 503 if state == "dead" else 202,
                            "next_attempt_at": NOW,
                        }
                        for n, state in enumerate(states)
                    ],
                )
                session.add(
                    DestinationHost(
                        host="h1.example",
                        health="failing",
                        failing_since=NOW - timedelta(days=2),
                        consecutive_failures=3,
                        last_error="HTTP 503",
                        attempts=3,
                    )
                )
                session.add(
                    Post(
                        account_id=account.id,
                        object_uri=f"https://news.example.com/objects/{uuid.uuid4()}",
                        source="api",
                        source_id="2",
                        document={"type": "Note", "name": "Next release"},
                        state="scheduled",
                        scheduled_at=NOW + timedelta(days=1),
                    )
                )
                return post.id
        finally:
            await database.dispose()

    return asyncio.run(work())


def test_status_json_is_the_monitoring_overview(cli):
    result = cli("status", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["queue"]["counts"]["ready"] == 0
    assert set(body) == {
        "queue",
        "backlog",
        "throughput",
        "hosts",
        "followers",
        "scheduled_posts",
        "dead_letters",
        "webhooks",
    }


def test_status_prints_a_readable_summary(cli, database):
    seed(database.url)
    result = cli("status")

    assert result.exit_code == 0, result.output
    assert "dead 1" in result.output
    assert "failing 1" in result.output


def test_hosts_lists_the_failing_host_with_its_dead_delivery(cli, database):
    seed(database.url)
    as_json = cli("hosts", "--json")
    readable = cli("hosts", "--unhealthy")

    [host] = json.loads(as_json.output)
    assert host["host"] == "h1.example"
    assert host["status"] == "failing"
    assert host["waiting"] == {"dead": 1}
    assert "h1.example" in readable.output and "HTTP 503" in readable.output


def test_hosts_with_an_unknown_host_fails(cli):
    result = cli("hosts", "nowhere.example")

    assert result.exit_code == 1
    assert "nowhere.example" in result.output


def test_posts_show_explains_where_the_post_did_not_arrive(cli, database):
    post_id = seed(database.url)
    as_json = cli("posts", "show", str(post_id), "--json")
    readable = cli("posts", "show", str(post_id))

    report = json.loads(as_json.output)
    assert report["delivered_hosts"] == {"h0.example": 1}
    assert [item["host"] for item in report["not_delivered"]] == ["h1.example"]
    assert readable.exit_code == 0
    assert "why:" in readable.output and "h1.example" in readable.output


def test_posts_show_unknown_post_fails(cli):
    result = cli("posts", "show", "4242")

    assert result.exit_code == 1
    assert "no post 4242" in result.output


def test_posts_watch_ends_when_every_delivery_finished(cli, database):
    post_id = seed(database.url)
    result = cli("posts", "watch", str(post_id), "--timeout", "5")

    assert result.exit_code == 0, result.output
    assert "2/2" in result.output


def test_posts_watch_gives_up_on_unfinished_deliveries(cli, database):
    post_id = seed(database.url, states=("delivered", "retrying"))
    result = cli("posts", "watch", str(post_id), "--timeout", "0.3", "--interval", "0.1")

    assert result.exit_code == 2
    assert "1/2" in result.output
    assert "unfinished" in result.output


def test_posts_list_and_scheduled_as_json(cli, database):
    post_id = seed(database.url)
    recent = json.loads(cli("posts", "list", "--json").output)
    scheduled = json.loads(cli("posts", "scheduled", "--json").output)

    assert [(p["post_id"], p["delivered"], p["not_delivered"]) for p in recent] == [(post_id, 1, 1)]
    assert [p["title"] for p in scheduled] == ["Next release"]
