"""Admin API for posts and for each account's routing and templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.harness.webhook_senders import activities, create_account, row_counts

PROBLEM = "application/problem+json"


def later(seconds: int = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def publish(client, headers, **body):
    return await client.post(
        "/api/admin/posts",
        json={"title": "Hello", "url": "https://example.com/hello", "accounts": ["blog"], **body},
        headers=headers,
    )


async def test_publishing_now_creates_post_activity_and_deliveries(client, database, admin_headers):
    await create_account(database, "blog", followers=2)
    response = await publish(client, admin_headers)
    assert response.status_code == 201
    [entry] = response.json()["accounts"]
    assert entry["status"] == "published"
    assert entry["object"].startswith("http://relay.test/objects/")
    assert await row_counts(database) == {
        "posts": 1,
        "activities": 1,
        "deliveries": 2,
        "webhook_events": 0,
    }


async def test_one_request_publishes_on_several_accounts(client, database, admin_headers):
    await create_account(database, "blog", followers=1)
    await create_account(database, "news", followers=1)
    response = await publish(client, admin_headers, accounts=["blog", "news"])
    assert [entry["account"] for entry in response.json()["accounts"]] == ["blog", "news"]
    assert (await row_counts(database))["activities"] == 2


async def test_unknown_account_is_422_naming_accounts(client, database, admin_headers):
    await create_account(database, "blog")
    response = await publish(client, admin_headers, accounts=["blog", "ghost-town"])
    assert response.status_code == 422
    assert response.json()["errors"] == [{"name": "accounts", "reason": "no account 'ghost-town'"}]
    assert (await row_counts(database))["posts"] == 0


async def test_accounts_are_required(client, admin_headers):
    response = await client.post("/api/admin/posts", json={"title": "x"}, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "accounts"


async def test_posting_needs_the_admin_token(client):
    response = await client.post("/api/admin/posts", json={"title": "x", "accounts": ["blog"]})
    assert response.status_code == 401


async def test_same_source_id_posted_again_with_changes_is_an_update(
    client, database, admin_headers
):
    await create_account(database, "blog", followers=1)
    await publish(client, admin_headers, source_id="fixed")
    response = await publish(client, admin_headers, source_id="fixed", title="Hello, edited")
    assert response.json()["accounts"][0]["status"] == "updated"
    assert [a.activity_type for a in await activities(database)] == ["Create", "Update"]


async def test_scheduled_post_is_stored_without_publishing(client, database, admin_headers):
    await create_account(database, "blog", followers=1)
    response = await publish(client, admin_headers, scheduled_at=later())
    assert response.json()["accounts"][0]["status"] == "scheduled"
    listing = await client.get("/api/admin/posts/scheduled", headers=admin_headers)
    assert [post["state"] for post in listing.json()] == ["scheduled"]
    assert (await row_counts(database))["activities"] == 0


async def test_listing_filters_by_state(client, database, admin_headers):
    await create_account(database, "blog")
    await publish(client, admin_headers)
    await publish(client, admin_headers, scheduled_at=later())
    published = await client.get("/api/admin/posts?state=published", headers=admin_headers)
    everything = await client.get("/api/admin/posts", headers=admin_headers)
    assert [post["state"] for post in published.json()] == ["published"]
    assert len(everything.json()) == 2


async def test_showing_one_post_includes_its_document(client, database, admin_headers):
    await create_account(database, "blog")
    post_id = (await publish(client, admin_headers)).json()["accounts"][0]["post_id"]
    response = await client.get(f"/api/admin/posts/{post_id}", headers=admin_headers)
    assert response.json()["document"]["type"] == "Note"


async def test_unknown_post_is_404(client, admin_headers):
    response = await client.get("/api/admin/posts/999999", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_rescheduling_moves_the_time(client, database, admin_headers):
    await create_account(database, "blog")
    post_id = (await publish(client, admin_headers, scheduled_at=later())).json()["accounts"][0][
        "post_id"
    ]
    new_time = datetime.now(UTC) + timedelta(days=2)
    response = await client.patch(
        f"/api/admin/posts/{post_id}/schedule",
        json={"scheduled_at": new_time.isoformat()},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["scheduled_at"]) == new_time.replace(
        microsecond=new_time.microsecond
    )


async def test_cancelling_a_scheduled_post(client, database, admin_headers):
    await create_account(database, "blog")
    post_id = (await publish(client, admin_headers, scheduled_at=later())).json()["accounts"][0][
        "post_id"
    ]
    response = await client.post(f"/api/admin/posts/{post_id}/cancel", headers=admin_headers)
    assert response.json()["state"] == "cancelled"


async def test_cancelling_a_published_post_is_a_conflict(client, database, admin_headers):
    await create_account(database, "blog")
    post_id = (await publish(client, admin_headers)).json()["accounts"][0]["post_id"]
    response = await client.post(f"/api/admin/posts/{post_id}/cancel", headers=admin_headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/post-not-scheduled")


async def test_routing_can_be_set_and_read(client, database, admin_headers):
    await create_account(database, "blog")
    routing = {"rules": [{"sources": ["forgejo"], "events": ["release"], "tags": ["v*"]}]}
    put = await client.put("/api/admin/accounts/blog/routing", json=routing, headers=admin_headers)
    got = await client.get("/api/admin/accounts/blog/routing", headers=admin_headers)
    assert put.status_code == 200
    assert got.json() == {
        "rules": [
            {"sources": ["forgejo"], "events": ["release"], "tags": ["v*"], "prereleases": False}
        ]
    }


async def test_routing_with_an_unknown_event_kind_is_422(client, database, admin_headers):
    await create_account(database, "blog")
    response = await client.put(
        "/api/admin/accounts/blog/routing",
        json={"rules": [{"events": ["fork"]}]},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "rules.0.events.0"


async def test_templates_can_be_set_and_shown_with_the_defaults(client, database, admin_headers):
    await create_account(database, "blog")
    body = {"templates": {"release": "<p>{{ repository }} {{ tag }}</p>"}}
    await client.put("/api/admin/accounts/blog/templates", json=body, headers=admin_headers)
    got = (await client.get("/api/admin/accounts/blog/templates", headers=admin_headers)).json()
    assert got["templates"] == body["templates"]
    assert set(got["defaults"]) == {"post", "release", "tag", "star", "star_milestone"}


async def test_a_broken_template_is_422_naming_the_kind(client, database, admin_headers):
    await create_account(database, "blog")
    response = await client.put(
        "/api/admin/accounts/blog/templates",
        json={"templates": {"star": "{% for %}"}},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "templates.star"


async def test_custom_template_shapes_published_posts(client, database, admin_headers):
    await create_account(database, "blog")
    await client.put(
        "/api/admin/accounts/blog/templates",
        json={"templates": {"post": "<p>📣 {{ title }}</p>"}},
        headers=admin_headers,
    )
    response = await publish(client, admin_headers, url=None)
    post_id = response.json()["accounts"][0]["post_id"]
    shown = await client.get(f"/api/admin/posts/{post_id}", headers=admin_headers)
    assert shown.json()["document"]["content"] == "<p>📣 Hello</p>"
