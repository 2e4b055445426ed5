"""Admin API of the federation side: follow requests, interactions, history, block list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bench.harness.fleet import Fleet
from service.db.engine import Database
from service.db.models import (
    Account,
    Activity,
    Delivery,
    Follower,
    FollowerSnapshot,
    Interaction,
)
from service.runtime.settings import Settings
from tests.federation_peers import (
    activity_from,
    create_account,
    create_post,
    post_signed,
)

pytest_plugins = ("tests.fleet_fixture",)


@pytest.fixture
async def closed_account(database: Database) -> Account:
    return await create_account(database, "closed", manually_approves_followers=True)


async def add_follower(
    database: Database, account: Account, actor_uri: str, state: str = "accepted"
) -> int:
    host = actor_uri.split("/")[2]
    async with database.transaction() as session:
        follower = Follower(
            account_id=account.id,
            actor_uri=actor_uri,
            host=host,
            inbox=f"{actor_uri}/inbox",
            shared_inbox=f"https://{host}/inbox",
            state=state,
            follow_activity_id=f"{actor_uri}#follows/1",
        )
        session.add(follower)
    return follower.id


async def test_admin_endpoints_require_the_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/admin/blocked-domains")
    assert response.status_code == 401


async def test_followers_are_listed_by_state(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    closed_account: Account,
) -> None:
    await add_follower(database, closed_account, "https://a.example/users/a")
    await add_follower(database, closed_account, "https://b.example/users/b", state="pending")
    accepted = (
        await client.get("/api/admin/accounts/closed/followers", headers=admin_headers)
    ).json()
    pending = (
        await client.get(
            "/api/admin/accounts/closed/followers?state=pending", headers=admin_headers
        )
    ).json()
    assert [item["actor_uri"] for item in accepted["items"]] == ["https://a.example/users/a"]
    assert accepted["total"] == 1
    assert [item["actor_uri"] for item in pending["items"]] == ["https://b.example/users/b"]


async def test_approving_a_request_accepts_it_and_sends_accept(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    closed_account: Account,
) -> None:
    follower_id = await add_follower(
        database, closed_account, "https://b.example/users/b", state="pending"
    )
    response = await client.post(
        f"/api/admin/accounts/closed/followers/{follower_id}/approve", headers=admin_headers
    )
    assert response.status_code == 200 and response.json()["state"] == "accepted"
    async with database.session() as session:
        follower = await session.get(Follower, follower_id)
        activity = (await session.execute(select(Activity))).scalar_one()
        delivery = (await session.execute(select(Delivery))).scalar_one()
    assert follower is not None and follower.state == "accepted"
    assert activity.activity_type == "Accept"
    assert activity.document["object"]["id"] == "https://b.example/users/b#follows/1"
    assert delivery.inbox == "https://b.example/users/b/inbox"


async def test_approving_a_follower_that_is_not_pending_is_409(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    closed_account: Account,
) -> None:
    follower_id = await add_follower(database, closed_account, "https://a.example/users/a")
    response = await client.post(
        f"/api/admin/accounts/closed/followers/{follower_id}/approve", headers=admin_headers
    )
    assert response.status_code == 409


async def test_rejecting_a_request_removes_it_and_sends_reject(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    closed_account: Account,
) -> None:
    follower_id = await add_follower(
        database, closed_account, "https://b.example/users/b", state="pending"
    )
    response = await client.post(
        f"/api/admin/accounts/closed/followers/{follower_id}/reject", headers=admin_headers
    )
    assert response.status_code == 200 and response.json()["state"] == "rejected"
    async with database.session() as session:
        assert await session.get(Follower, follower_id) is None
        activity = (await session.execute(select(Activity))).scalar_one()
    assert activity.activity_type == "Reject"


async def test_follower_of_another_account_is_404(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    closed_account: Account,
) -> None:
    other = await create_account(database, "other")
    follower_id = await add_follower(database, other, "https://b.example/users/b", "pending")
    response = await client.post(
        f"/api/admin/accounts/closed/followers/{follower_id}/approve", headers=admin_headers
    )
    assert response.status_code == 404


async def test_interactions_of_a_post_are_counted_with_who_and_when(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    database: Database,
    settings: Settings,
) -> None:
    account = await create_account(database)
    post = await create_post(database, settings, account)
    now = datetime.now(UTC)
    async with database.transaction() as session:
        for n, (kind, undone) in enumerate(
            [("like", False), ("like", False), ("like", True), ("boost", False), ("reply", False)]
        ):
            session.add(
                Interaction(
                    post_id=post.id,
                    account_id=account.id,
                    kind=kind,
                    actor_uri=f"https://r.example/users/{n}",
                    activity_uri=f"https://r.example/activities/{n}",
                    url="https://r.example/@4/1" if kind == "reply" else None,
                    content_html="<p>hi</p>" if kind == "reply" else None,
                    created_at=now - timedelta(minutes=10 - n),
                    undone_at=now if undone else None,
                )
            )
    body = (
        await client.get(f"/api/admin/posts/{post.id}/interactions", headers=admin_headers)
    ).json()
    assert body["counts"] == {"likes": 2, "boosts": 1, "replies": 1}
    assert [like["actor_uri"] for like in body["likes"]] == [
        "https://r.example/users/0",
        "https://r.example/users/1",
    ]
    assert body["replies"][0]["content_html"] == "<p>hi</p>"
    assert body["replies"][0]["url"] == "https://r.example/@4/1"
    assert "at" in body["boosts"][0]


async def test_interactions_of_an_unknown_post_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get("/api/admin/posts/999999/interactions", headers=admin_headers)
    assert response.status_code == 404


async def test_follower_history_lists_daily_snapshots_and_the_current_count(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database: Database
) -> None:
    account = await create_account(database)
    today = datetime.now(UTC).date()
    async with database.transaction() as session:
        for days_ago, count in ((2, 5), (1, 7), (400, 1)):
            session.add(
                FollowerSnapshot(
                    account_id=account.id, day=today - timedelta(days=days_ago), followers=count
                )
            )
    await add_follower(database, account, "https://a.example/users/a")
    body = (
        await client.get("/api/admin/accounts/news/follower-history", headers=admin_headers)
    ).json()
    assert body["current"] == 1
    assert body["history"] == [
        {"day": (today - timedelta(days=2)).isoformat(), "followers": 5},
        {"day": (today - timedelta(days=1)).isoformat(), "followers": 7},
    ]


async def test_blocked_domains_can_be_added_listed_and_removed(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(
        "/api/admin/blocked-domains",
        json={"domain": "Spam.Example.", "reason": "spam"},
        headers=admin_headers,
    )
    assert created.status_code == 201
    assert created.json()["domain"] == "spam.example"
    listed = (await client.get("/api/admin/blocked-domains", headers=admin_headers)).json()
    assert [item["domain"] for item in listed["items"]] == ["spam.example"]
    fetched = await client.get("/api/admin/blocked-domains/spam.example", headers=admin_headers)
    assert fetched.json()["reason"] == "spam"
    removed = await client.delete("/api/admin/blocked-domains/spam.example", headers=admin_headers)
    assert removed.status_code == 204
    again = await client.delete("/api/admin/blocked-domains/spam.example", headers=admin_headers)
    assert again.status_code == 404


async def test_blocking_a_domain_twice_is_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"domain": "spam.example"}
    await client.post("/api/admin/blocked-domains", json=body, headers=admin_headers)
    response = await client.post("/api/admin/blocked-domains", json=body, headers=admin_headers)
    assert response.status_code == 409


@pytest.mark.parametrize("domain", ["", "not a domain", "-bad.example", "a..b", "x" * 300])
async def test_blocking_something_that_is_not_a_domain_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], domain: str
) -> None:
    response = await client.post(
        "/api/admin/blocked-domains", json={"domain": domain}, headers=admin_headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "domain"


async def test_blocking_a_domain_removes_its_followers_and_its_subdomains(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database: Database
) -> None:
    account = await create_account(database)
    await add_follower(database, account, "https://spam.example/users/a")
    await add_follower(database, account, "https://eu.spam.example/users/b")
    await add_follower(database, account, "https://fine.example/users/c")
    response = await client.post(
        "/api/admin/blocked-domains", json={"domain": "spam.example"}, headers=admin_headers
    )
    assert response.json()["followers_removed"] == 2
    async with database.session() as session:
        remaining = (await session.execute(select(Follower.actor_uri))).scalars().all()
    assert remaining == ["https://fine.example/users/c"]


async def test_a_new_block_applies_to_the_inbox_at_once(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    settings: Settings,
    fleet: Fleet,
) -> None:
    actor = fleet.actor(0, 0)
    like = activity_from(actor, "Like", f"{settings.base_url}/objects/x")
    assert (await post_signed(client, settings, actor, like)).status_code == 202
    await client.post(
        "/api/admin/blocked-domains", json={"domain": actor.host.address}, headers=admin_headers
    )
    again = activity_from(actor, "Like", f"{settings.base_url}/objects/y")
    assert (await post_signed(client, settings, actor, again)).status_code == 403
