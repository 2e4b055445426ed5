"""POST /hooks/forgejo, /hooks/github and /hooks/ghost with the payloads those systems send."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from bench.harness.webhook_senders import (
    FORGEJO_SECRET,
    GHOST_SECRET,
    activities,
    create_account,
    payload,
    payload_json,
    posts,
    process_received,
    row_counts,
    send_forgejo,
    send_ghost,
    send_github,
    with_webhook_secrets,
)
from federation.sources.webhook_signatures import sign_forge_webhook
from service.runtime.settings import Settings

RELEASES = {"rules": [{"sources": ["forgejo", "github"], "events": ["release", "tag"]}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


async def test_forgejo_release_publishes_once_to_followers(client, database, settings):
    await create_account(database, "releases", followers=2, routing=RELEASES)
    response = await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    await process_received(database, settings)
    assert response.status_code == 202
    counts = await row_counts(database)
    assert (counts["posts"], counts["activities"], counts["deliveries"]) == (1, 1, 2)
    [post] = await posts(database)
    assert post.source == "forgejo"
    assert post.source_id == "acme/widget#release:42"
    assert post.document["url"] == "https://forge.example.org/acme/widget/releases/tag/v1.4.0"


async def test_forgejo_redelivery_with_the_same_delivery_id_is_200(client, database, settings):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    body = payload("forgejo_release_published.json")
    first = await send_forgejo(client, "release", body, delivery="d-1")
    await process_received(database, settings)
    again = await send_forgejo(client, "release", body, delivery="d-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["result"]["accounts"][0]["status"] == "published"
    assert (await row_counts(database))["activities"] == 1


async def test_forgejo_release_notes_are_escaped(client, database, settings):
    await create_account(database, "releases", routing=RELEASES)
    await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    await process_received(database, settings)
    [post] = await posts(database)
    assert "<script" not in post.document["content"]
    assert "&lt;script&gt;" in post.document["content"]


async def test_forgejo_release_update_edits_the_same_object(client, database, settings):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    await send_forgejo(client, "release", payload("forgejo_release_updated.json"))
    await process_received(database, settings)
    create, update = await activities(database)
    assert update.activity_type == "Update"
    assert update.document["object"]["id"] == create.document["object"]["id"]


async def test_forgejo_release_deletion_sends_delete(client, database, settings):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    await send_forgejo(client, "release", payload("forgejo_release_deleted.json"))
    await process_received(database, settings)
    assert [a.activity_type for a in await activities(database)] == ["Create", "Delete"]


async def test_forgejo_draft_release_is_ignored(client, database):
    response = await send_forgejo(client, "release", payload("forgejo_release_draft.json"))
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "draft releases are not published"}
    assert (await row_counts(database))["webhook_events"] == 0


async def test_forgejo_prerelease_is_skipped_unless_the_account_wants_it(
    client, database, settings
):
    await create_account(database, "releases", routing=RELEASES)
    await create_account(
        database,
        "nightly",
        routing={"rules": [{"sources": ["forgejo"], "events": ["release"], "prereleases": True}]},
    )
    await send_forgejo(client, "release", payload("forgejo_release_prerelease.json"))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.document["attributedTo"].endswith("/users/nightly")
    assert "pre-release" in post.document["content"]


async def test_forgejo_tag_creation_publishes_a_tag_post(client, database, settings):
    await create_account(database, "releases", routing=RELEASES)
    await send_forgejo(client, "create", payload("forgejo_create_tag.json"))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.source_id == "acme/widget#tag:v1.4.0"
    assert post.document["url"] == "https://forge.example.org/acme/widget/src/tag/v1.4.0"


async def test_forgejo_branch_creation_is_ignored(client):
    response = await send_forgejo(client, "create", payload("forgejo_create_branch.json"))
    assert response.json()["status"] == "ignored"


async def test_routing_filters_by_repository_and_tag_pattern(client, database, settings):
    await create_account(
        database,
        "other",
        routing={"rules": [{"sources": ["forgejo"], "repositories": ["acme/gadget"]}]},
    )
    await create_account(
        database,
        "widgets",
        routing={"rules": [{"repositories": ["acme/*"], "tags": ["v1.*"]}]},
    )
    await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.document["attributedTo"].endswith("/users/widgets")


async def test_forgejo_unknown_event_is_ignored_with_a_reason(client):
    response = await send_forgejo(client, "push", b'{"ref": "refs/heads/main"}')
    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "event type 'push' is not published by the relay",
    }


async def test_forgejo_empty_signature_is_401(client):
    response = await client.post(
        "/hooks/forgejo",
        content=payload("forgejo_release_published.json"),
        headers={"x-forgejo-event": "release", "x-forgejo-signature": ""},
    )
    assert response.status_code == 401


async def test_forgejo_without_a_configured_secret_refuses_everything(client, settings):
    settings.forgejo_webhook_secret = None
    response = await send_forgejo(client, "release", payload("forgejo_release_published.json"))
    assert response.status_code == 401
    assert "no webhook secret" in response.json()["detail"]


async def test_forgejo_gitea_signature_header_is_accepted(client):
    body = payload("forgejo_release_draft.json")
    response = await client.post(
        "/hooks/forgejo",
        content=body,
        headers={
            "x-gitea-event": "release",
            "x-gitea-delivery": "g-1",
            "x-gitea-signature": sign_forge_webhook(FORGEJO_SECRET, body),
        },
    )
    assert response.status_code == 202


async def test_forgejo_schema_violation_is_422_naming_the_field(client):
    body = payload_json("forgejo_release_published.json")
    del body["release"]["tag_name"]
    response = await send_forgejo(client, "release", json.dumps(body).encode())
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"name": "release.tag_name", "reason": "must be a non-empty string"}
    ]


async def test_forgejo_malformed_json_is_400(client):
    response = await send_forgejo(client, "release", b"{not json")
    assert response.status_code == 400


async def test_forgejo_dry_run_previews_without_storing(client, database):
    await create_account(database, "releases", routing=RELEASES)
    response = await send_forgejo(
        client,
        "release",
        payload("forgejo_release_published.json"),
        params={"dry_run": "true"},
    )
    assert response.status_code == 200
    [preview] = response.json()["previews"]
    assert preview["account"] == "releases"
    assert preview["object"]["type"] == "Note"
    assert (await row_counts(database))["webhook_events"] == 0


async def test_github_release_publishes(client, database, settings):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    response = await send_github(client, "release", payload("github_release_published.json"))
    await process_received(database, settings)
    assert response.status_code == 202
    [post] = await posts(database)
    assert post.source_id == "acme/gadget#release:150123456"


async def test_github_release_created_action_is_ignored_to_avoid_doubles(client):
    response = await send_github(client, "release", payload("github_release_created.json"))
    assert response.json()["status"] == "ignored"


async def test_github_star_reaching_a_milestone_publishes_star_and_milestone(
    client, database, settings
):
    await create_account(
        database,
        "stars",
        routing={"rules": [{"sources": ["github"], "events": ["star", "star_milestone"]}]},
    )
    await send_github(client, "star", payload("github_star_created.json"))
    await process_received(database, settings)
    assert sorted(post.source_id for post in await posts(database)) == [
        "acme/gadget#star:carol",
        "acme/gadget#stars:100",
    ]


async def test_github_ping_is_ignored(client):
    response = await send_github(client, "ping", payload("github_ping.json"))
    assert response.json() == {"status": "ignored", "reason": "ping event: nothing to publish"}


async def test_github_wrong_signature_is_401(client):
    response = await client.post(
        "/hooks/github",
        content=payload("github_release_published.json"),
        headers={"x-github-event": "release", "x-hub-signature-256": "sha256=" + "0" * 64},
    )
    assert response.status_code == 401


async def test_ghost_published_post_publishes_with_image_and_hashtags(client, database, settings):
    await create_account(database, "blog", followers=1, routing={"rules": [{"sources": ["ghost"]}]})
    response = await send_ghost(client, payload("ghost_post_published.json"))
    await process_received(database, settings)
    assert response.status_code == 202
    [post] = await posts(database)
    document = post.document
    assert document["attachment"][0]["name"] == "Blossoms on a branch"
    assert [tag["name"] for tag in document["tag"]] == ["#Announcements"]
    assert "<script" not in document["content"]


async def test_ghost_edit_then_unpublish_updates_then_deletes(client, database, settings):
    await create_account(database, "blog", followers=1, routing={"rules": [{"sources": ["ghost"]}]})
    for name in (
        "ghost_post_published.json",
        "ghost_post_edited.json",
        "ghost_post_unpublished.json",
    ):
        await send_ghost(client, payload(name))
    await process_received(database, settings)
    assert [a.activity_type for a in await activities(database)] == ["Create", "Update", "Delete"]


async def test_ghost_redelivery_of_the_same_body_is_200(client, database, settings):
    body = payload("ghost_post_published.json")
    first = await send_ghost(client, body)
    again = await send_ghost(client, body)
    assert (first.status_code, again.status_code) == (202, 200)


async def test_ghost_stale_timestamp_is_401(client):
    stale = int((time.time() - 600) * 1000)
    response = await send_ghost(client, payload("ghost_post_published.json"), timestamp_ms=stale)
    assert response.status_code == 401


async def test_ghost_signature_over_the_body_alone_is_rejected(client):
    # A MAC over the body without the timestamp would let an old signature be replayed.
    body = payload("ghost_post_published.json")
    now_ms = int(time.time() * 1000)
    digest = hmac.new(GHOST_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post(
        "/hooks/ghost",
        content=body,
        headers={"x-ghost-signature": f"sha256={digest}, t={now_ms}"},
    )
    assert response.status_code == 401


async def test_ghost_schema_violation_is_422_naming_the_field(client):
    body = json.dumps({"post": {"current": {"id": 5, "status": "published"}}}).encode()
    response = await send_ghost(client, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "post.current.id"


async def test_ghost_member_event_is_ignored(client):
    response = await send_ghost(client, b'{"member": {"current": {"id": "m1"}}}')
    assert response.json()["status"] == "ignored"
