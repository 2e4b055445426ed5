"""Outbox, followers, following and featured collections, with cursor paging."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from bench.harness.fleet import Fleet
from bench.harness.relay_harness import asgi_client
from federation.activitypub.vocabulary import AS_CONTEXT
from federation.signatures.cavage import sign_request
from service.app import create_app
from service.db.engine import Database
from service.db.models import Account, Activity, Follower, Post
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post

pytest_plugins = ("tests.fleet_fixture",)

AP = {"Accept": "application/activity+json"}


async def add_activity(
    database: Database,
    settings: Settings,
    account: Account,
    *,
    kind: str = "Create",
    in_outbox: bool = True,
    post: Post | None = None,
) -> dict[str, Any]:
    document = {
        "@context": AS_CONTEXT,
        "id": f"{settings.base_url}/activities/{uuid.uuid4()}",
        "type": kind,
        "actor": f"{settings.base_url}/users/{account.handle}",
        "object": post.object_uri if post else f"{settings.base_url}/objects/{uuid.uuid4()}",
    }
    async with database.transaction() as session:
        session.add(
            Activity(
                activity_uri=document["id"],
                account_id=account.id,
                post_id=post.id if post else None,
                activity_type=kind,
                document=document,
                in_outbox=in_outbox,
            )
        )
    return document


@pytest.fixture
async def account(database: Database) -> Account:
    return await create_account(database)


@pytest.fixture
async def outbox_documents(
    database: Database, settings: Settings, account: Account
) -> list[dict[str, Any]]:
    """25 public activities, oldest first, plus ones that must not show."""
    documents = [await add_activity(database, settings, account) for _ in range(25)]
    await add_activity(database, settings, account, kind="Accept", in_outbox=False)
    deleted = await create_post(database, settings, account, state="deleted")
    await add_activity(database, settings, account, post=deleted)
    return documents


def without_context(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "@context"}


async def test_outbox_head_counts_public_activities(
    client: httpx.AsyncClient, settings: Settings, outbox_documents: list[dict[str, Any]]
) -> None:
    response = await client.get("/users/news/outbox", headers=AP)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/activity+json")
    head = response.json()
    outbox = f"{settings.base_url}/users/news/outbox"
    assert head["type"] == "OrderedCollection" and head["id"] == outbox
    assert head["totalItems"] == 25
    assert head["first"] == f"{outbox}?page=true"
    assert "orderedItems" not in head


async def test_outbox_pages_newest_first_with_next_and_prev(
    client: httpx.AsyncClient, settings: Settings, outbox_documents: list[dict[str, Any]]
) -> None:
    newest_first = [without_context(doc) for doc in reversed(outbox_documents)]
    first = (await client.get("/users/news/outbox?page=true", headers=AP)).json()
    assert first["type"] == "OrderedCollectionPage"
    assert first["orderedItems"] == newest_first[:20]
    assert "prev" not in first
    second = (await client.get(first["next"].removeprefix(settings.base_url), headers=AP)).json()
    assert second["orderedItems"] == newest_first[20:]
    assert "next" not in second
    back = (await client.get(second["prev"].removeprefix(settings.base_url), headers=AP)).json()
    assert back["orderedItems"] == newest_first[:20]


async def test_outbox_last_page_holds_the_oldest(
    client: httpx.AsyncClient, settings: Settings, outbox_documents: list[dict[str, Any]]
) -> None:
    head = (await client.get("/users/news/outbox", headers=AP)).json()
    last = (await client.get(head["last"].removeprefix(settings.base_url), headers=AP)).json()
    oldest = [without_context(doc) for doc in reversed(outbox_documents[:20])]
    assert last["orderedItems"] == oldest
    assert "prev" in last and "next" not in last


async def test_outbox_garbage_cursor_is_the_first_page(
    client: httpx.AsyncClient, outbox_documents: list[dict[str, Any]]
) -> None:
    response = await client.get("/users/news/outbox?page=true&max_id=abc", headers=AP)
    assert response.status_code == 200
    assert len(response.json()["orderedItems"]) == 20


async def test_browser_asking_for_a_collection_is_sent_to_the_profile(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    response = await client.get("/users/news/outbox", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{settings.base_url}/@news"


async def test_unknown_account_collection_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/nobody/outbox", headers=AP)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def add_followers(database: Database, account: Account, count: int) -> list[str]:
    uris = [f"https://remote{n}.example/users/u{n}" for n in range(count)]
    async with database.transaction() as session:
        for n, uri in enumerate(uris):
            session.add(
                Follower(
                    account_id=account.id,
                    actor_uri=uri,
                    host=f"remote{n}.example",
                    inbox=f"{uri}/inbox",
                    state="accepted",
                )
            )
        session.add(
            Follower(
                account_id=account.id,
                actor_uri="https://pending.example/users/p",
                host="pending.example",
                inbox="https://pending.example/users/p/inbox",
                state="pending",
            )
        )
    return uris


async def test_followers_count_is_public_but_the_list_is_hidden_by_default(
    client: httpx.AsyncClient, database: Database, account: Account
) -> None:
    await add_followers(database, account, 3)
    head = (await client.get("/users/news/followers", headers=AP)).json()
    assert head["totalItems"] == 3
    assert "first" not in head and "orderedItems" not in head
    page = (await client.get("/users/news/followers?page=true", headers=AP)).json()
    assert page["type"] == "OrderedCollection" and "orderedItems" not in page


async def test_followers_are_listed_when_the_account_shows_them(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await create_account(database, "open", show_followers=True)
    uris = await add_followers(database, account, 3)
    head = (await client.get("/users/open/followers", headers=AP)).json()
    assert head["totalItems"] == 3 and "first" in head
    page = (await client.get("/users/open/followers?page=true", headers=AP)).json()
    assert page["orderedItems"] == list(reversed(uris))


async def test_following_is_an_empty_collection(
    client: httpx.AsyncClient, account: Account
) -> None:
    head = (await client.get("/users/news/following", headers=AP)).json()
    assert head["type"] == "OrderedCollection" and head["totalItems"] == 0
    page = (await client.get("/users/news/following?page=true", headers=AP)).json()
    assert page["orderedItems"] == []


async def test_featured_lists_pinned_published_posts(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    pinned = await create_post(database, settings, account, pinned=True)
    await create_post(database, settings, account)
    await create_post(database, settings, account, pinned=True, state="deleted")
    featured = (await client.get("/users/news/collections/featured", headers=AP)).json()
    assert featured["id"] == f"{settings.base_url}/users/news/collections/featured"
    assert featured["totalItems"] == 1
    assert featured["orderedItems"] == [without_context(pinned.document)]


@pytest.fixture
async def authorized_client(settings: Settings) -> Any:
    secure = settings.model_copy(update={"authorized_fetch": True})
    app = create_app(secure)
    async with app.router.lifespan_context(app), asgi_client(app, secure.base_url) as http:
        yield http


async def test_authorized_fetch_refuses_unsigned_collection_requests(
    authorized_client: httpx.AsyncClient, account: Account
) -> None:
    response = await authorized_client.get("/users/news/outbox", headers=AP)
    assert response.status_code == 401


async def test_authorized_fetch_serves_signed_collection_requests(
    authorized_client: httpx.AsyncClient, settings: Settings, account: Account, fleet: Fleet
) -> None:
    actor = fleet.actor(0, 0)
    url = f"{settings.base_url}/users/news/outbox"
    headers = sign_request("GET", url, {}, None, actor.key_id, actor.key.private_key)
    response = await authorized_client.get("/users/news/outbox", headers={**AP, **headers})
    assert response.status_code == 200
    assert response.json()["type"] == "OrderedCollection"
