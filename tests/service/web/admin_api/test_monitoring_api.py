"""Monitoring API: queue, throughput, hosts, post reports, schedule, dead letters, audience."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, update

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.fleet_faults import Fault
from bench.harness.relay_harness import running_worker
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import (
    Account,
    Delivery,
    DeliveryAttempt,
    Follower,
    FollowerSnapshot,
    Interaction,
    Post,
)
from service.runtime.settings import Settings

NOW = datetime.now(UTC)
MINUTE = NOW.replace(second=0, microsecond=0)


@pytest.fixture(autouse=True)
def _clock_read_per_test() -> None:
    """Windows like "the last hour" are relative to now: read it when each test starts, not
    when the module was collected, however long the suite has been running."""
    global NOW, MINUTE
    NOW = datetime.now(UTC)
    MINUTE = NOW.replace(second=0, microsecond=0)


async def add_post(
    database: Database, account: Account, *, state: str = "published", **columns: object
) -> Post:
    urls = InstanceUrls("http://relay.test")
    async with database.transaction() as session:
        post = Post(
            account_id=account.id,
            object_uri=urls.object(str(uuid.uuid4())),
            source="api",
            source_id=str(uuid.uuid4()),
            document={"type": "Note", "name": "Release 1.0"},
            state=state,
            published_at=NOW if state == "published" else None,
            **columns,
        )
        session.add(post)
    return post


async def add_followers(database: Database, account: Account, count: int, state: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            insert(Follower),
            [
                {
                    "account_id": account.id,
                    "actor_uri": f"https://h{n}.example/users/{state}{n}",
                    "host": f"h{n}.example",
                    "inbox": f"https://h{n}.example/inbox",
                    "state": state,
                }
                for n in range(count)
            ],
        )


async def test_monitoring_needs_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/admin/monitoring/queue")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_queue_counts_ready_scheduled_and_dead_deliveries_apart(
    database: Database, settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    await add_followers(database, account, 3, "accepted")
    published = await publish(database, account, note_activity(urls, account))
    async with database.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.inbox == "https://h0.example/inbox")
            .values(state="retrying", next_attempt_at=NOW + timedelta(hours=1))
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.inbox == "https://h1.example/inbox")
            .values(state="dead")
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.inbox == "https://h2.example/inbox")
            .values(next_attempt_at=NOW - timedelta(minutes=5))
        )

    body = (await client.get("/api/admin/monitoring/queue", headers=admin_headers)).json()

    assert published.delivery_count == 3
    assert body["counts"] == {
        "ready": 1, "scheduled": 1, "in_flight": 0, "retrying": 0, "parked": 0, "dead": 1,
    }  # fmt: skip
    assert 299 <= body["oldest_ready_age_seconds"] < 400


async def test_throughput_reports_rates_per_minute_and_latency_percentiles(
    database: Database, settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    await add_followers(database, account, 1, "accepted")
    published = await publish(database, account, note_activity(urls, account))
    async with database.transaction() as session:
        delivery_id = (await session.execute(Delivery.__table__.select())).first().id
        rows = [
            {
                "delivery_id": delivery_id,
                "attempted_at": MINUTE - timedelta(minutes=n % 3) + timedelta(seconds=n % 50),
                "status_code": 202 if n < 90 else (500 if n < 95 else None),
                "error": None if n < 90 else "boom",
                "duration_ms": n + 1,
            }
            for n in range(100)
        ]
        rows.append({**rows[0], "attempted_at": NOW - timedelta(hours=3)})  # outside the window
        await session.execute(insert(DeliveryAttempt), rows)

    body = (
        await client.get(
            "/api/admin/monitoring/throughput", params={"window_minutes": 60}, headers=admin_headers
        )
    ).json()

    assert published.delivery_count == 1
    assert (body["attempts"], body["delivered"], body["failed"]) == (100, 90, 10)
    assert body["success_rate"] == 0.9
    assert body["outcomes"] == {"delivered": 90, "retryable": 5, "network_error": 5}
    assert body["latency_ms"] == {"p50": 50, "p90": 90, "p99": 99}
    assert sum(minute["delivered"] + minute["failed"] for minute in body["per_minute"]) == 100
    assert [minute["delivered"] + minute["failed"] for minute in body["per_minute"]] == [33, 33, 34]
    assert body["deliveries_per_minute"] == 1.5


async def test_throughput_window_is_validated_as_a_client_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/admin/monitoring/throughput", params={"window_minutes": 0}, headers=admin_headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "window_minutes"


async def test_unknown_post_and_host_are_404_problems(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    post = await client.get("/api/admin/monitoring/posts/999", headers=admin_headers)
    host = await client.get("/api/admin/monitoring/hosts/nowhere.example", headers=admin_headers)

    assert (post.status_code, post.json()["type"].rsplit("/", 1)[1]) == (404, "unknown-post")
    assert (host.status_code, host.json()["type"].rsplit("/", 1)[1]) == (404, "unknown-host")


async def test_failing_hosts_dead_letters_and_a_post_report_after_a_real_fanout(
    database: Database, settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    settings = fast_settings(settings, delivery_max_retries=1)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    post = await add_post(database, account)
    queue = await connect_queue(settings)
    async with Fleet(hosts=3, followers=1) as fleet, running_worker(settings):
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        broken = fleet.hosts[0].domain
        await fleet.inject(Fault.server_error(), hosts=[fleet.hosts[0]])
        document = note_activity(urls, account, object_id=post.object_uri)
        published = await publish(database, account, document, queue, post=post)
        await wait_until_finished(database, published.activity_row_id, timeout=30)
    await queue.close()

    hosts = (
        await client.get("/api/admin/monitoring/hosts?unhealthy=true", headers=admin_headers)
    ).json()
    letters = (await client.get("/api/admin/monitoring/dead-letters", headers=admin_headers)).json()
    report = (
        await client.get(f"/api/admin/monitoring/posts/{post.id}", headers=admin_headers)
    ).json()
    recent = (await client.get("/api/admin/monitoring/posts", headers=admin_headers)).json()

    assert [item["host"] for item in hosts] == [broken]
    assert hosts[0]["health"] == "failing" and hosts[0]["status"] == "failing"
    assert hosts[0]["waiting"] == {"dead": 1}
    assert "500" in (hosts[0]["last_error"] or "") or hosts[0]["consecutive_failures"] >= 2
    assert letters["total"] == 1
    assert letters["items"][0]["host"] == broken
    assert letters["items"][0]["post_id"] == post.id
    assert letters["items"][0]["last_status"] == 500
    assert report["activities"][0]["states"] == {"delivered": 2, "dead": 1}
    assert len(report["delivered_hosts"]) == 2 and broken not in report["delivered_hosts"]
    assert [item["host"] for item in report["not_delivered"]] == [broken]
    assert any(broken in reason and "dead letters" in reason for reason in report["reasons"])
    assert recent[0]["post_id"] == post.id
    assert (recent[0]["delivered"], recent[0]["not_delivered"]) == (2, 1)


async def test_a_post_without_followers_says_so(
    database: Database, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    post = await add_post(database, account)
    await publish(
        database, account, note_activity(urls, account, object_id=post.object_uri), post=post
    )

    report = (
        await client.get(f"/api/admin/monitoring/posts/{post.id}", headers=admin_headers)
    ).json()

    assert report["activities"][0]["total"] == 0
    assert any("no accepted followers" in reason for reason in report["reasons"])


async def test_scheduled_posts_are_listed_soonest_first(
    database: Database, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    account = await create_account(database)
    later = await add_post(
        database, account, state="scheduled", scheduled_at=NOW + timedelta(days=2)
    )
    sooner = await add_post(
        database, account, state="scheduled", scheduled_at=NOW + timedelta(hours=1)
    )
    await add_post(database, account)

    body = (await client.get("/api/admin/monitoring/scheduled", headers=admin_headers)).json()

    assert [item["post_id"] for item in body] == [sooner.id, later.id]
    assert body[0]["title"] == "Release 1.0"


async def test_follower_counts_history_and_pending_follows(
    database: Database, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    account = await create_account(database)
    other = await create_account(database, "docs")
    await add_followers(database, account, 4, "accepted")
    await add_followers(database, other, 2, "pending")
    today = NOW.date()
    async with database.transaction() as session:
        await session.execute(
            insert(FollowerSnapshot),
            [
                {"account_id": account.id, "day": today - timedelta(days=2), "followers": 1},
                {"account_id": account.id, "day": today - timedelta(days=1), "followers": 3},
                {"account_id": other.id, "day": today - timedelta(days=1), "followers": 5},
                {"account_id": account.id, "day": date(2000, 1, 1), "followers": 99},
            ],
        )

    everyone = (await client.get("/api/admin/monitoring/followers", headers=admin_headers)).json()
    one = (
        await client.get("/api/admin/monitoring/followers?account=news", headers=admin_headers)
    ).json()
    pending = (
        await client.get("/api/admin/monitoring/pending-follows", headers=admin_headers)
    ).json()

    assert {a["handle"]: (a["followers"], a["pending_follows"]) for a in everyone["accounts"]} == {
        "news": (4, 0),
        "docs": (0, 2),
    }
    assert [point["value"] for point in everyone["history"]] == [1, 8]
    assert [point["value"] for point in one["history"]] == [1, 3]
    assert {item["account"] for item in pending} == {"docs"} and len(pending) == 2


async def test_interactions_per_day_count_each_kind(
    database: Database, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    account = await create_account(database)
    post = await add_post(database, account)
    kinds = ["like", "like", "boost", "reply"]
    async with database.transaction() as session:
        await session.execute(
            insert(Interaction),
            [
                {
                    "post_id": post.id,
                    "account_id": account.id,
                    "kind": kind,
                    "actor_uri": f"https://x.example/users/{n}",
                    "activity_uri": f"https://x.example/activities/{n}",
                    "created_at": NOW - timedelta(days=n // 2),
                }
                for n, kind in enumerate(kinds)
            ],
        )

    body = (await client.get("/api/admin/monitoring/interactions", headers=admin_headers)).json()
    recent = (await client.get("/api/admin/monitoring/posts", headers=admin_headers)).json()

    assert sum(day["likes"] for day in body) == 2
    assert sum(day["boosts"] + day["replies"] for day in body) == 2
    assert len(body) == 2
    assert (recent[0]["likes"], recent[0]["boosts"], recent[0]["replies"]) == (2, 1, 1)


async def test_overview_sums_up_queue_hosts_followers_and_schedule(
    database: Database, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    account = await create_account(database)
    await add_followers(database, account, 2, "accepted")
    await add_post(database, account, state="scheduled", scheduled_at=NOW + timedelta(hours=1))

    body = (await client.get("/api/admin/monitoring/overview", headers=admin_headers)).json()

    assert body["followers"] == {"accepted": 2, "pending": 0}
    assert body["scheduled_posts"] == 1
    assert body["backlog"] == 0
    assert body["throughput"]["attempts"] == 0
    assert body["hosts"]["ok"] == 0
