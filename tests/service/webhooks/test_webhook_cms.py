"""POST /hooks/cms: Standard Webhooks authentication, the CMS schema, storage and publishing."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bench.harness.relay_harness import running_worker
from bench.harness.webhook_senders import (
    CMS_OLD_SECRET,
    activities,
    cms_body,
    create_account,
    posts,
    process_received,
    row_counts,
    send_cms,
    with_webhook_secrets,
)
from service.runtime.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


async def test_signed_event_is_stored_and_accepted(client, database):
    response = await send_cms(client, cms_body(accounts=["blog"]))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert (await row_counts(database))["webhook_events"] == 1


async def test_published_event_publishes_once_to_existing_followers(client, database, settings):
    await create_account(database, "blog", followers=3)
    await send_cms(client, cms_body(accounts=["blog"]))
    await process_received(database, settings)
    assert await row_counts(database) == {
        "posts": 1,
        "activities": 1,
        "deliveries": 3,
        "webhook_events": 1,
    }
    [create] = await activities(database)
    assert create.activity_type == "Create"
    assert create.document["object"]["url"] == "https://blog.example.com/hello"


async def test_redelivery_answers_200_with_the_earlier_result_and_publishes_nothing_new(
    client, database, settings
):
    await create_account(database, "blog", followers=2)
    body = cms_body(accounts=["blog"])
    first = await send_cms(client, body, message_id="msg_same")
    await process_received(database, settings)
    again = await send_cms(client, body, message_id="msg_same")
    await process_received(database, settings)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["status"] == "processed"
    assert again.json()["result"]["accounts"][0]["status"] == "published"
    assert (await row_counts(database))["activities"] == 1


async def test_same_post_sent_as_a_new_delivery_publishes_nothing_new(client, database, settings):
    await create_account(database, "blog", followers=1)
    await send_cms(client, cms_body(accounts=["blog"]))
    await send_cms(client, cms_body(accounts=["blog"]))
    results = await process_received(database, settings)
    assert results[1]["accounts"][0]["status"] == "unchanged"
    assert (await row_counts(database))["activities"] == 1


async def test_event_goes_to_every_listed_account(client, database, settings):
    await create_account(database, "blog", followers=1)
    await create_account(database, "news", followers=2)
    await send_cms(client, cms_body(accounts=["blog", "news"]))
    await process_received(database, settings)
    counts = await row_counts(database)
    assert (counts["posts"], counts["activities"], counts["deliveries"]) == (2, 2, 3)


async def test_event_without_accounts_follows_routing(client, database, settings):
    await create_account(database, "blog", routing={"rules": [{"sources": ["cms"]}]})
    await create_account(database, "releases", routing={"rules": [{"sources": ["forgejo"]}]})
    await send_cms(client, cms_body())
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.object_uri.startswith("http://relay.test/objects/")
    assert post.document["attributedTo"] == "http://relay.test/users/blog"


async def test_update_publishes_an_update_of_the_same_object(client, database, settings):
    await create_account(database, "blog", followers=1)
    await send_cms(client, cms_body(accounts=["blog"]))
    await send_cms(client, cms_body(event="updated", title="Hello again", accounts=["blog"]))
    await process_received(database, settings)
    create, update = await activities(database)
    assert update.activity_type == "Update"
    assert update.document["object"]["id"] == create.document["object"]["id"]
    assert "updated" in update.document["object"]
    assert "Hello again" in update.document["object"]["content"]
    assert (await row_counts(database))["posts"] == 1


async def test_unchanged_update_publishes_nothing(client, database, settings):
    await create_account(database, "blog", followers=1)
    await send_cms(client, cms_body(accounts=["blog"]))
    await send_cms(client, cms_body(event="updated", accounts=["blog"]))
    results = await process_received(database, settings)
    assert results[1]["accounts"][0]["status"] == "unchanged"
    assert (await row_counts(database))["activities"] == 1


async def test_unpublish_deletes_with_a_tombstone_and_marks_the_post_deleted(
    client, database, settings
):
    await create_account(database, "blog", followers=1)
    await send_cms(client, cms_body(accounts=["blog"]))
    await send_cms(
        client, json.dumps({"event": "unpublished", "source_id": "post-2024-05-hello"}).encode()
    )
    await process_received(database, settings)
    create, delete = await activities(database)
    assert delete.activity_type == "Delete"
    assert delete.document["object"]["type"] == "Tombstone"
    assert delete.document["object"]["id"] == create.document["object"]["id"]
    [post] = await posts(database)
    assert post.state == "deleted"
    assert post.deleted_at is not None


async def test_wrong_signature_is_401(client, database):
    response = await send_cms(client, cms_body(), secret="whsec_" + "QUJDREVGR0g=")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert (await row_counts(database))["webhook_events"] == 0


async def test_missing_signature_is_401(client):
    response = await client.post(
        "/hooks/cms", content=cms_body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-signature")


async def test_stale_timestamp_is_401(client):
    response = await send_cms(client, cms_body(), timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert "tolerance" in response.json()["detail"]


async def test_previous_secret_still_works_during_rotation(client):
    response = await send_cms(client, cms_body(), secret=CMS_OLD_SECRET)
    assert response.status_code == 202


async def test_malformed_json_is_400(client):
    response = await send_cms(client, b'{"event": "published",')
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


async def test_schema_violation_is_422_naming_the_field(client):
    response = await send_cms(client, cms_body(url="not a url"))
    assert response.status_code == 422
    assert [error["name"] for error in response.json()["errors"]] == ["url"]


async def test_missing_source_id_is_422_naming_it(client):
    body = json.dumps({"event": "published", "title": "No id"}).encode()
    response = await send_cms(client, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "source_id"


async def test_nested_schema_violation_names_the_path(client):
    response = await send_cms(client, cms_body(image={"url": "https://x.example/a.png", "alt": 3}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "image.alt"


async def test_unknown_event_type_is_202_ignored_with_a_reason(client, database):
    response = await send_cms(client, cms_body(event="archived"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "archived" in response.json()["reason"]
    assert (await row_counts(database))["webhook_events"] == 0


async def test_oversize_body_is_413(client, settings):
    body = cms_body(content="x" * (settings.max_webhook_body_bytes + 1))
    response = await send_cms(client, body)
    assert response.status_code == 413


async def test_dry_run_answers_with_the_preview_and_stores_nothing(client, database):
    await create_account(database, "blog", followers=1)
    response = await send_cms(client, cms_body(accounts=["blog"], dry_run=True))
    assert response.status_code == 200
    [preview] = response.json()["previews"]
    assert preview["activity"]["type"] == "Create"
    assert preview["length"] <= preview["limit"]
    assert await row_counts(database) == {
        "posts": 0,
        "activities": 0,
        "deliveries": 0,
        "webhook_events": 0,
    }


async def test_unknown_target_account_is_reported_in_the_result(client, database, settings):
    await send_cms(client, cms_body(accounts=["nobody"]))
    [result] = await process_received(database, settings)
    assert result == {
        "accounts": [{"account": "nobody", "status": "failed", "reason": "no such account"}]
    }


async def test_worker_processes_an_accepted_delivery(client, database, settings, redis):
    await create_account(database, "blog", followers=1)
    body = cms_body(accounts=["blog"])
    async with running_worker(settings):
        accepted = await send_cms(client, body, message_id="msg_worker")
        for _ in range(100):
            answer = await send_cms(client, body, message_id="msg_worker")
            if answer.json()["status"] == "processed":
                break
            await asyncio.sleep(0.05)
    assert answer.json()["event_id"] == accepted.json()["event_id"]
    assert answer.json()["status"] == "processed"
    assert (await row_counts(database))["activities"] == 1


async def test_concurrent_deliveries_are_each_stored_once(client, database):
    distinct = [send_cms(client, cms_body(source_id=f"p{i}")) for i in range(40)]
    repeated = [send_cms(client, cms_body(), message_id="msg_dup") for _ in range(5)]
    responses = await asyncio.gather(*distinct, *repeated)
    statuses = [response.status_code for response in responses]
    assert statuses[:40] == [202] * 40
    assert sorted(statuses[40:]) == [200, 200, 200, 200, 202]
    assert (await row_counts(database))["webhook_events"] == 41


async def test_cms_schema_and_examples_are_in_the_openapi_document(client):
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/hooks/cms"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert {"event", "source_id"} <= set(schema["required"])
    assert schema["examples"][0]["event"] == "published"
    assert "$ref" not in json.dumps(schema)
