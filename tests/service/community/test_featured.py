"""Pinned posts: the admin API pins and unpins, and the featured collection lists them."""

from __future__ import annotations

import httpx

from service.db.engine import Database
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post

AS_JSON = {"Accept": "application/activity+json"}


async def _featured_ids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/users/news/collections/featured", headers=AS_JSON)
    assert response.status_code == 200
    body = response.json()
    return [item["id"] for item in body["orderedItems"]]


async def test_pinned_posts_appear_in_the_featured_collection_newest_pin_first(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    first = await create_post(database, settings, account)
    second = await create_post(database, settings, account)
    await create_post(database, settings, account)
    for post in (second, first):
        response = await client.post(f"/api/admin/posts/{post.id}/pin", headers=admin_headers)
        assert response.status_code == 200
        assert response.json()["pinned"] is True
    assert await _featured_ids(client) == [first.object_uri, second.object_uri]


async def test_unpinning_removes_the_post_from_the_collection(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    post = await create_post(database, settings, account, pinned=True)
    assert await _featured_ids(client) == [post.object_uri]
    response = await client.delete(f"/api/admin/posts/{post.id}/pin", headers=admin_headers)
    assert response.json() == {
        "post_id": post.id,
        "object": post.object_uri,
        "pinned": False,
        "pinned_at": None,
    }
    assert await _featured_ids(client) == []


async def test_a_deleted_post_cannot_be_pinned(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    post = await create_post(database, settings, account, state="deleted")
    response = await client.post(f"/api/admin/posts/{post.id}/pin", headers=admin_headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/post-not-published")


async def test_at_most_five_posts_are_pinned(
    client: httpx.AsyncClient, database: Database, settings: Settings, admin_headers: dict[str, str]
):
    account = await create_account(database, "news")
    for _ in range(5):
        await create_post(database, settings, account, pinned=True)
    extra = await create_post(database, settings, account)
    response = await client.post(f"/api/admin/posts/{extra.id}/pin", headers=admin_headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/too-many-pins")


async def test_pinning_an_unknown_post_is_a_404_problem(
    client: httpx.AsyncClient, database: Database, admin_headers: dict[str, str]
):
    response = await client.post("/api/admin/posts/999999/pin", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_pinning_needs_the_admin_token(client: httpx.AsyncClient, database: Database):
    response = await client.post("/api/admin/posts/1/pin")
    assert response.status_code == 401
