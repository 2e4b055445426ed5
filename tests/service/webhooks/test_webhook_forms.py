"""Forgejo, Gitea and GitHub webhooks sent form-encoded (`payload=<json>`), signed the way each
forge signs them: GitHub over the body as sent, Forgejo and Gitea over the JSON payload."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

from bench.harness.webhook_senders import (
    FORGEJO_SECRET,
    GITHUB_SECRET,
    create_account,
    payload,
    posts,
    process_received,
    row_counts,
    with_webhook_secrets,
)
from federation.sources.webhook_signatures import sign_forge_webhook, sign_github_webhook
from service.runtime.settings import Settings

FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"
RELEASES = {"rules": [{"sources": ["forgejo", "github"], "events": ["release", "tag"]}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


def form(json_text: bytes) -> bytes:
    """What Go's url.Values{"payload": ...}.Encode() sends (spaces as `+`)."""
    return urlencode({"payload": json_text.decode()}).encode()


async def send_forgejo_form(client, body: bytes, *, signed: bytes, delivery: str | None = None):
    headers = {
        "content-type": FORM,
        "x-forgejo-event": "release",
        "x-forgejo-delivery": delivery or str(uuid.uuid4()),
        "x-forgejo-signature": sign_forge_webhook(FORGEJO_SECRET, signed),
    }
    return await client.post("/hooks/forgejo", content=body, headers=headers)


async def send_github_form(client, body: bytes, *, signed: bytes):
    headers = {
        "content-type": FORM,
        "x-github-event": "release",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": sign_github_webhook(GITHUB_SECRET, signed),
    }
    return await client.post("/hooks/github", content=body, headers=headers)


async def test_a_forgejo_form_signed_over_its_payload_is_accepted_and_published(
    client, database, settings
):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    release = payload("forgejo_release_published.json")

    response = await send_forgejo_form(client, form(release), signed=release)
    await process_received(database, settings)

    assert response.status_code == 202
    [post] = await posts(database)
    assert post.source_id == "acme/widget#release:42"


async def test_a_forgejo_form_signed_over_the_whole_form_is_refused(client, database):
    body = form(payload("forgejo_release_published.json"))

    response = await send_forgejo_form(client, body, signed=body)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert (await row_counts(database))["webhook_events"] == 0


async def test_a_github_form_signed_over_the_body_as_sent_is_accepted_and_published(
    client, database, settings
):
    await create_account(database, "releases", followers=1, routing=RELEASES)
    body = form(payload("github_release_published.json"))

    response = await send_github_form(client, body, signed=body)
    await process_received(database, settings)

    assert response.status_code == 202
    assert len(await posts(database)) == 1


async def test_a_github_form_signed_over_the_payload_alone_is_refused(client, database):
    release = payload("github_release_published.json")

    response = await send_github_form(client, form(release), signed=release)

    assert response.status_code == 401
    assert (await row_counts(database))["webhook_events"] == 0


async def test_a_form_webhook_is_stored_as_its_json_payload(client, database, settings):
    release = payload("forgejo_release_published.json")

    response = await send_forgejo_form(client, form(release), signed=release)
    results = await process_received(database, settings)

    assert response.status_code == 202
    # The worker parses the stored body as JSON: it was stored as the payload, not the form.
    assert results and "error" not in (results[0] or {})


async def test_a_form_redelivery_with_the_same_delivery_id_is_200(client, database, settings):
    release = payload("forgejo_release_published.json")

    first = await send_forgejo_form(client, form(release), signed=release, delivery="f-1")
    again = await send_forgejo_form(client, form(release), signed=release, delivery="f-1")

    assert (first.status_code, again.status_code) == (202, 200)
    assert (await row_counts(database))["webhook_events"] == 1


async def test_a_form_without_a_payload_field_is_a_400_problem(client):
    body = urlencode({"data": "{}"}).encode()

    response = await send_github_form(client, body, signed=body)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/missing-payload")


async def test_a_form_with_two_payload_fields_is_a_400_problem(client):
    body = b"payload=%7B%7D&payload=%7B%7D"

    response = await send_github_form(client, body, signed=body)

    assert response.status_code == 400
    assert response.json()["type"].endswith("/missing-payload")


async def test_a_form_whose_payload_is_not_json_is_a_400_problem(client):
    body = form(b"{not json")

    response = await send_github_form(client, body, signed=body)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/malformed-json")


async def test_a_forgejo_form_whose_payload_is_not_json_is_a_400_problem(client):
    response = await send_forgejo_form(client, form(b"{not json"), signed=b"{not json")

    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")


async def test_a_form_that_is_not_utf8_is_a_400_problem(client):
    body = b"payload=%FF%FE"

    response = await send_forgejo_form(client, body, signed=b"\xff\xfe")

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/malformed-form")


async def test_a_form_with_a_content_type_parameter_is_still_a_form(client, database):
    release = payload("forgejo_release_published.json")
    headers = {
        "content-type": f"{FORM}; charset=utf-8",
        "x-forgejo-event": "release",
        "x-forgejo-signature": sign_forge_webhook(FORGEJO_SECRET, release),
    }

    response = await client.post("/hooks/forgejo", content=form(release), headers=headers)

    assert response.status_code == 202
