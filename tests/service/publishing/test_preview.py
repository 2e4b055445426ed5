"""POST /api/preview: exactly what would be published, per account, with nothing stored."""

from __future__ import annotations

from bench.harness.webhook_senders import create_account, posts, row_counts

NOTHING = {"posts": 0, "activities": 0, "deliveries": 0, "webhook_events": 0}


async def preview(client, headers, **body):
    return await client.post("/api/preview", json=body, headers=headers)


async def test_preview_shows_the_activity_per_account_and_stores_nothing(
    client, database, admin_headers
):
    await create_account(database, "blog", followers=2)
    await create_account(database, "news", followers=1, max_post_length=80)
    response = await preview(
        client,
        admin_headers,
        title="Hello",
        summary="A summary " * 20,
        url="https://example.com/hello",
        accounts=["blog", "news"],
    )
    assert response.status_code == 200
    blog, news = response.json()["previews"]
    assert blog["activity"]["type"] == "Create"
    assert blog["activity"]["object"]["attributedTo"] == "http://relay.test/users/blog"
    assert (blog["limit"], news["limit"]) == (500, 80)
    assert news["truncated"] is True
    assert news["length"] <= 80 and news["within_limit"] is True
    assert news["plain_text"].endswith("https://example.com/hello")
    assert await row_counts(database) == NOTHING


async def test_preview_without_accounts_follows_routing(client, database, admin_headers):
    await create_account(database, "blog", routing={"rules": [{"sources": ["cms"]}]})
    await create_account(database, "releases", routing={"rules": [{"sources": ["forgejo"]}]})
    response = await preview(client, admin_headers, title="Routed")
    assert [item["account"] for item in response.json()["previews"]] == ["blog"]


async def test_preview_of_an_edit_targets_the_existing_object(client, database, admin_headers):
    await create_account(database, "blog")
    await client.post(
        "/api/admin/posts",
        json={"title": "First", "source_id": "p1", "accounts": ["blog"]},
        headers=admin_headers,
    )
    [post] = await posts(database)
    response = await preview(
        client,
        admin_headers,
        source="api",
        event="updated",
        source_id="p1",
        title="Second",
        accounts=["blog"],
    )
    [item] = response.json()["previews"]
    assert item["activity"]["type"] == "Update"
    assert item["object"]["id"] == post.object_uri
    assert (await row_counts(database))["activities"] == 1


async def test_preview_reports_unknown_accounts(client, database, admin_headers):
    response = await preview(client, admin_headers, title="x", accounts=["nobody"])
    assert response.json()["previews"] == [{"account": "nobody", "error": "no such account"}]


async def test_preview_needs_the_admin_token(client):
    response = await client.post("/api/preview", json={"title": "x"})
    assert response.status_code == 401


async def test_preview_schema_violation_is_422(client, admin_headers):
    response = await preview(client, admin_headers, content_format="rtf")
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "content_format"


async def test_admin_post_dry_run_is_a_preview(client, database, admin_headers):
    await create_account(database, "blog")
    response = await client.post(
        "/api/admin/posts",
        json={"title": "Dry", "accounts": ["blog"], "dry_run": True},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert response.json()["previews"][0]["object"]["content"] == "<p><strong>Dry</strong></p>"
    assert await row_counts(database) == NOTHING
