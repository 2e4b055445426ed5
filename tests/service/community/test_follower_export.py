"""Follower export in Mastodon's follow-list format, JSON export, and importing a follow list."""

from __future__ import annotations

import csv
import io

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from bench.harness.delivery_scenarios import (
    connect_queue,
    fast_settings,
    follow_from_fleet,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.relay_harness import running_worker
from federation.activitypub.follow_lists import (
    MASTODON_HEADER,
    ListRow,
    read_follow_list,
    write_follow_list,
)
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Activity, Following, InboxActivity, RemoteActor
from service.inbox.processing import InboxProcessor
from service.remote.documents import RemoteDocumentFetcher
from service.runtime.settings import Settings
from tests.federation_peers import activity_from, create_account, post_signed

# Mastodon's own export of two follows, as written by its CSV library.
MASTODON_EXPORT = (
    "Account address,Show boosts,Notify on new posts,Languages\n"
    "alice@mastodon.example,true,false,\n"
    'bob@other.example,false,true,"en, de"\n'
)


def test_export_writes_mastodons_header_and_row_shape():
    text = write_follow_list(
        [ListRow("a@one.example"), ListRow("b@two.example", languages=("en", "de"))]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == MASTODON_HEADER
    assert rows[1] == ["a@one.example", "true", "false", ""]
    assert rows[2] == ["b@two.example", "true", "false", "en, de"]


def test_import_reads_a_mastodon_export():
    parsed = read_follow_list(MASTODON_EXPORT)
    assert [str(a) for a in parsed.addresses] == ["alice@mastodon.example", "bob@other.example"]
    assert parsed.rejected == ()


def test_import_reads_a_headerless_list_and_reports_bad_rows():
    parsed = read_follow_list(
        "@carol@c.example\nnot an address\nacct:dave@d.example\ncarol@c.example\n"
    )
    assert [str(a) for a in parsed.addresses] == ["carol@c.example", "dave@d.example"]
    assert [(line, text) for line, text, _ in parsed.rejected] == [(2, "not an address")]


async def test_csv_export_lists_every_follower_by_address(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    async with Fleet(hosts=2, followers=2, key_pool_size=2) as fleet:
        await follow_from_fleet(database, account, fleet)
        response = await client.get(
            "/api/admin/accounts/news/followers/export", headers=admin_headers
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == MASTODON_HEADER
    assert sorted(row[0] for row in rows[1:]) == sorted(actor.acct for actor in fleet.followers)
    # Handles that had to be fetched are remembered for the next export.
    async with database.session() as session:
        handles = set((await session.execute(select(RemoteActor.handle))).scalars())
    assert handles == {"follower0", "follower1"}


async def test_json_export_carries_inboxes_and_since(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    async with Fleet(hosts=1, followers=2, key_pool_size=2) as fleet:
        await follow_from_fleet(database, account, fleet)
        response = await client.get(
            "/api/admin/accounts/news/followers/export?format=json", headers=admin_headers
        )
    body = response.json()
    assert body["total"] == 2
    first = body["followers"][0]
    assert set(first) == {"actor", "address", "inbox", "shared_inbox", "since"}
    assert first["shared_inbox"] == fleet.hosts[0].shared_inbox
    assert first["since"].endswith("Z")


async def test_export_format_must_be_csv_or_json(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    await create_account(database, "news")
    response = await client.get(
        "/api/admin/accounts/news/followers/export?format=xml", headers=admin_headers
    )
    assert response.status_code == 422


async def test_exported_followers_import_as_follows_that_servers_accept(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    admin_headers: dict[str, str],
    redis: Redis,
):
    settings = fast_settings(settings)
    urls = InstanceUrls(settings.base_url)
    old = await create_account(database, "news")
    new = await create_account(database, "press")
    queue = await connect_queue(settings)
    async with Fleet(hosts=2, followers=2, key_pool_size=2) as fleet, running_worker(settings):
        trust_account_key(fleet, new, urls)
        await follow_from_fleet(database, old, fleet)
        exported = await client.get(
            "/api/admin/accounts/news/followers/export", headers=admin_headers
        )
        imported = await client.post(
            "/api/admin/accounts/press/following/import",
            content=exported.text.encode(),
            headers={**admin_headers, "Content-Type": "text/csv"},
        )
        assert imported.status_code == 202
        report = imported.json()
        assert sorted(report["followed"]) == sorted(a.acct for a in fleet.followers)
        assert report["failed"] == []
        async with database.session() as session:
            follows = (
                (await session.execute(select(Activity).where(Activity.activity_type == "Follow")))
                .scalars()
                .all()
            )
        for follow in follows:
            arrivals = await fleet.wait_for(follow.activity_uri, count=1, timeout=20)
            assert arrivals[0].verified
            assert arrivals[0].activity["object"] in {a.id for a in fleet.followers}
        # Each server answers with an Accept, which the inbox applies.
        for follow in follows:
            target = next(a for a in fleet.followers if a.id == follow.document["object"])
            accept = activity_from(target, "Accept", follow.document)
            assert (await post_signed(client, settings, target, accept)).status_code == 202
        fetcher = RemoteDocumentFetcher.from_settings(settings)

        async def fetch(url: str):
            return (await fetcher.fetch(url)).document

        processor = InboxProcessor(database, urls, fetch)
        async with database.session() as session:
            received = (await session.execute(select(InboxActivity.id))).scalars().all()
        for row_id in received:
            await processor.process(row_id)
        await fetcher.aclose()
        await wait_until_finished(database)
    await queue.close()
    async with database.session() as session:
        states = (
            (await session.execute(select(Following.state).where(Following.account_id == new.id)))
            .scalars()
            .all()
        )
    assert states == ["accepted"] * 4


async def test_import_reports_addresses_that_do_not_resolve(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    await create_account(database, "press")
    async with Fleet(hosts=1, followers=1, key_pool_size=1) as fleet:
        text = f"Account address,Show boosts\nnobody@{fleet.hosts[0].domain},true\nbad row,true\n"
        response = await client.post(
            "/api/admin/accounts/press/following/import",
            content=text.encode(),
            headers={**admin_headers, "Content-Type": "text/csv"},
        )
    body = response.json()
    assert body["followed"] == []
    assert [entry["address"] for entry in body["failed"]] == [
        "bad row",
        f"nobody@{fleet.hosts[0].domain}",
    ]
    assert "does not exist" in body["failed"][1]["reason"]
