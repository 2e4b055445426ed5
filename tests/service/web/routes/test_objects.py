"""Published objects and activities are dereferenceable at their ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bench.harness.fleet import Fleet
from bench.harness.relay_harness import asgi_client
from federation.signatures.cavage import sign_request
from service.app import create_app
from service.db.engine import Database
from service.db.models import Account, Post
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post
from tests.service.web.routes.test_collections import add_activity

pytest_plugins = ("tests.fleet_fixture",)

AP = {"Accept": "application/activity+json"}
LD = {"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
async def account(database: Database) -> Account:
    return await create_account(database)


def path_of(url: str, settings: Settings) -> str:
    return url.removeprefix(settings.base_url)


async def test_object_is_served_as_it_was_published(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account)
    response = await client.get(path_of(post.object_uri, settings), headers=AP)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/activity+json")
    assert response.json() == post.document
    assert "Accept" in response.headers["vary"]


async def test_object_is_served_for_ld_json_with_the_activitystreams_profile(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account)
    response = await client.get(path_of(post.object_uri, settings), headers=LD)
    assert response.json() == post.document


async def test_browser_is_redirected_to_the_canonical_url(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, url="https://blog.example/hello")
    response = await client.get(path_of(post.object_uri, settings), headers=BROWSER)
    assert response.status_code == 303
    assert response.headers["location"] == "https://blog.example/hello"


async def test_browser_gets_a_page_when_there_is_no_canonical_url(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, url=None)
    async with database.transaction() as session:
        stored = await session.get(Post, post.id)
        assert stored is not None
        stored.document = {**stored.document, "content": "<p>Hi<script>alert(1)</script></p>"}
    response = await client.get(path_of(post.object_uri, settings), headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<p>Hi</p>" in response.text
    assert "<script>" not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_deleted_object_is_410_with_a_tombstone(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, state="deleted")
    response = await client.get(path_of(post.object_uri, settings), headers=AP)
    assert response.status_code == 410
    tombstone = response.json()
    assert tombstone["type"] == "Tombstone"
    assert tombstone["id"] == post.object_uri
    assert tombstone["formerType"] == "Note"
    assert tombstone["deleted"].endswith("Z")


async def test_deleted_object_is_410_for_browsers_too(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, state="deleted")
    response = await client.get(path_of(post.object_uri, settings), headers=BROWSER)
    assert response.status_code == 410
    assert "deleted" in response.text


async def test_scheduled_object_does_not_exist_yet(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, state="scheduled")
    response = await client.get(path_of(post.object_uri, settings), headers=AP)
    assert response.status_code == 404


async def test_unknown_object_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/objects/3f1c8a52-0000-4000-8000-000000000000", headers=AP)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_activity_is_served_as_it_was_delivered(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account)
    document = await add_activity(database, settings, account, post=post)
    response = await client.get(path_of(document["id"], settings), headers=AP)
    assert response.status_code == 200
    assert json.loads(response.content) == document


async def test_activity_outside_the_outbox_is_still_dereferenceable(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    accept = await add_activity(database, settings, account, kind="Accept", in_outbox=False)
    response = await client.get(path_of(accept["id"], settings), headers=AP)
    assert response.status_code == 200 and response.json() == accept


async def test_activity_about_a_deleted_post_is_410_but_its_delete_is_served(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, state="deleted")
    create = await add_activity(database, settings, account, post=post)
    delete = await add_activity(database, settings, account, kind="Delete", post=post)
    gone = await client.get(path_of(create["id"], settings), headers=AP)
    assert gone.status_code == 410 and gone.json()["formerType"] == "Create"
    served = await client.get(path_of(delete["id"], settings), headers=AP)
    assert served.status_code == 200 and served.json() == delete


async def test_browser_asking_for_an_activity_is_sent_to_the_post(
    client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account, url="https://blog.example/p")
    document = await add_activity(database, settings, account, post=post)
    response = await client.get(path_of(document["id"], settings), headers=BROWSER)
    assert response.status_code == 303
    assert response.headers["location"] == "https://blog.example/p"


@pytest.fixture
async def authorized_client(settings: Settings) -> Any:
    secure = settings.model_copy(update={"authorized_fetch": True})
    app = create_app(secure)
    async with app.router.lifespan_context(app), asgi_client(app, secure.base_url) as http:
        yield http


async def test_authorized_fetch_requires_a_signature_for_objects(
    authorized_client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    account: Account,
    fleet: Fleet,
) -> None:
    post = await create_post(database, settings, account)
    path = path_of(post.object_uri, settings)
    unsigned = await authorized_client.get(path, headers=AP)
    assert unsigned.status_code == 401
    actor = fleet.actor(0, 0)
    signed = sign_request("GET", post.object_uri, {}, None, actor.key_id, actor.key.private_key)
    response = await authorized_client.get(path, headers={**AP, **signed})
    assert response.status_code == 200 and response.json() == post.document


async def test_authorized_fetch_leaves_browsers_alone(
    authorized_client: httpx.AsyncClient, database: Database, settings: Settings, account: Account
) -> None:
    post = await create_post(database, settings, account)
    response = await authorized_client.get(path_of(post.object_uri, settings), headers=BROWSER)
    assert response.status_code == 303
