"""`fedirelay feeds ...` on a real database, against a feed served over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.accounts.store import AccountStore
from service.cli.commands import app
from service.db.engine import Database
from service.db.models import Post
from service.polling.feeds import FEED_SOURCE
from service.runtime.settings import get_settings

FEED_VIEW_KEYS = {
    "id",
    "url",
    "accounts",
    "interval_seconds",
    "last_polled_at",
    "next_poll_at",
    "last_status",
    "last_error",
}


class Feed:
    """An RSS feed a CMS serves; entries can be added between polls."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.url = ""

    def body(self) -> bytes:
        when = format_datetime(datetime(2024, 6, 1, 9, tzinfo=UTC), usegmt=True)
        items = "".join(
            f"<item><title>{guid}</title><link>https://blog.example/{guid}</link>"
            f'<guid isPermaLink="false">{guid}</guid><pubDate>{when}</pubDate>'
            f"<description>&lt;p&gt;{guid}&lt;/p&gt;</description></item>"
            for guid in self.entries
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>'
            f"<link>https://blog.example/</link><description>d</description>{items}"
            "</channel></rss>"
        ).encode()


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.body()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    yield served
    server.shutdown()
    server.server_close()


@pytest.fixture
def cli(database, monkeypatch):
    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.setenv("FEDIRELAY_BASE_URL", "https://news.example.com")
    monkeypatch.delenv("FEDIRELAY_REDIS_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def test_mode(monkeypatch):
    """Plain http to 127.0.0.1 allowed, as for the local feed server."""
    monkeypatch.setenv("FEDIRELAY_TEST_MODE", "true")
    get_settings.cache_clear()


def create_account(url: str, handle: str) -> None:
    async def work() -> None:
        database = Database(url)
        try:
            async with database.transaction() as session:
                await AccountStore(session).create(handle)
        finally:
            await database.dispose()

    asyncio.run(work())


def feed_posts(url: str) -> list[str]:
    async def work() -> list[str]:
        database = Database(url)
        try:
            async with database.session() as session:
                rows = await session.execute(
                    select(Post.source_id).where(Post.source == FEED_SOURCE).order_by(Post.id)
                )
                return list(rows.scalars())
        finally:
            await database.dispose()

    return asyncio.run(work())


def add(cli, url: str, *options: str) -> dict:
    result = cli("feeds", "add", url, *options, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_is_empty_without_subscriptions(cli):
    result = cli("feeds", "list", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_add_json_is_the_admin_apis_feed_document(cli, database):
    create_account(database.url, "brand")

    view = add(cli, "https://blog.example/feed.xml", "--account", "Brand", "--interval", "300")

    assert set(view) == FEED_VIEW_KEYS
    assert view["url"] == "https://blog.example/feed.xml"
    assert view["accounts"] == ["brand"]
    assert view["interval_seconds"] == 300
    assert view["last_polled_at"] is None
    assert view["next_poll_at"] is not None


def test_add_without_an_interval_uses_the_configured_default(cli, monkeypatch):
    monkeypatch.setenv("FEDIRELAY_FEED_POLL_INTERVAL_SECONDS", "1200")
    get_settings.cache_clear()

    view = add(cli, "https://blog.example/feed.xml")

    assert view["interval_seconds"] == 1200
    assert view["accounts"] == []


def test_add_prints_the_subscription_id_and_url(cli):
    result = cli("feeds", "add", "https://blog.example/feed.xml")

    assert result.exit_code == 0, result.output
    assert "subscribed feed" in result.stdout
    assert "https://blog.example/feed.xml" in result.stdout


def test_add_for_an_unknown_account_fails_naming_it(cli):
    result = cli("feeds", "add", "https://blog.example/feed.xml", "--account", "ghost")

    assert result.exit_code == 1
    assert "error: No account ghost" in result.stderr
    assert json.loads(cli("feeds", "list", "--json").stdout) == []


def test_add_of_an_already_subscribed_feed_fails(cli):
    add(cli, "https://blog.example/feed.xml")

    result = cli("feeds", "add", "https://blog.example/feed.xml")

    assert result.exit_code == 1
    assert "error: That feed is already subscribed" in result.stderr


def test_add_refuses_a_url_the_relay_may_not_fetch(cli):
    result = cli("feeds", "add", "http://127.0.0.1/feed.xml")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: url: ")


def test_add_with_an_interval_under_a_minute_is_a_usage_error(cli):
    result = cli("feeds", "add", "https://blog.example/feed.xml", "--interval", "30")

    assert result.exit_code == 2
    assert "interval_seconds" in result.stderr


def test_list_shows_subscriptions_oldest_first(cli):
    first = add(cli, "https://blog.example/feed.xml")
    second = add(cli, "https://other.example/atom.xml")

    listed = json.loads(cli("feeds", "list", "--json").stdout)
    text = cli("feeds", "list").stdout.splitlines()

    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    assert [line.split()[1] for line in text] == [first["url"], second["url"]]


def test_show_json_is_the_same_document_as_add(cli):
    created = add(cli, "https://blog.example/feed.xml")

    result = cli("feeds", "show", str(created["id"]), "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == created


def test_show_of_an_unknown_feed_fails(cli):
    result = cli("feeds", "show", "4242")

    assert result.exit_code == 1
    assert "error: No feed subscription 4242" in result.stderr


def test_remove_stops_the_subscription(cli):
    created = add(cli, "https://blog.example/feed.xml")

    result = cli("feeds", "remove", str(created["id"]))

    assert result.exit_code == 0, result.output
    assert f"removed feed {created['id']}" in result.stdout
    assert json.loads(cli("feeds", "list", "--json").stdout) == []


def test_remove_of_an_unknown_feed_fails(cli):
    result = cli("feeds", "remove", "4242", "--json")

    assert result.exit_code == 1
    assert "error: No feed subscription 4242" in result.stderr


def test_first_poll_only_records_what_the_feed_already_holds(cli, test_mode, database, feed):
    create_account(database.url, "news")
    feed.entries = ["a", "b"]
    created = add(cli, feed.url, "--account", "news")

    result = cli("feeds", "poll", str(created["id"]), "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "id": created["id"],
        "status": 200,
        "new": [],
        "changed": [],
        "baseline": 2,
        "error": None,
        "accounts": [],
    }
    assert feed_posts(database.url) == []
    shown = json.loads(cli("feeds", "show", str(created["id"]), "--json").stdout)
    assert shown["last_status"] == 200
    assert shown["last_polled_at"] is not None


def test_poll_publishes_entries_added_since_the_last_poll(cli, test_mode, database, feed):
    create_account(database.url, "news")
    feed.entries = ["a"]
    created = add(cli, feed.url, "--account", "news")
    cli("feeds", "poll", str(created["id"]))
    feed.entries.append("b")

    result = cli("feeds", "poll", str(created["id"]))

    assert result.exit_code == 0, result.output
    assert "1 new" in result.stdout
    assert feed_posts(database.url) == ["b"]


def test_poll_of_an_unreachable_feed_reports_the_error_and_fails(cli, test_mode, database):
    created = add(cli, "http://127.0.0.1:9/feed.xml")

    result = cli("feeds", "poll", str(created["id"]), "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]
    assert f"error: polling feed {created['id']} failed" in result.stderr
    shown = json.loads(cli("feeds", "show", str(created["id"]), "--json").stdout)
    assert shown["last_error"]


def test_poll_of_an_unknown_feed_fails(cli):
    result = cli("feeds", "poll", "4242")

    assert result.exit_code == 1
    assert "error: No feed subscription 4242" in result.stderr
