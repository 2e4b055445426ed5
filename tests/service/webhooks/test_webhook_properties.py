"""Properties: whatever arrives at a webhook, the answer is a client error or success, never 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.harness.webhook_senders import (
    send_cms,
    send_forgejo,
    send_ghost,
    send_github,
    with_webhook_secrets,
)
from federation.sources.events import IgnoredEvent, PayloadError
from federation.sources.forge_events import parse_forge_event
from federation.sources.ghost_events import parse_ghost_event
from service.runtime.settings import Settings
from service.webhooks.schemas import CmsEvent

# Keys the parsers look for, so generated documents reach deep into them.
VOCABULARY = [
    "action", "release", "repository", "sender", "id", "tag_name", "name", "body", "html_url",
    "draft", "prerelease", "full_name", "ref", "ref_type", "stargazers_count", "login", "post",
    "page", "current", "previous", "status", "title", "url", "tags", "feature_image", "html",
    "event", "source_id", "image", "alt", "accounts", "scheduled_at", "content_format",
]  # fmt: skip
EVENT_NAMES = ["release", "create", "star", "watch", "ping", "push", "", "RELEASE"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["published", "updated", "deleted", "tag", "created", "started"])
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(VOCABULARY) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)
raw_bodies = st.one_of(
    documents.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
)


@given(
    source=st.sampled_from(["forgejo", "github"]), name=st.sampled_from(EVENT_NAMES), doc=documents
)
def test_forge_parser_fails_only_with_payload_errors(source, name, doc):
    try:
        result = parse_forge_event(source, name, doc, [10, 100])
    except PayloadError:
        return
    assert isinstance(result, (list, IgnoredEvent))


@given(doc=documents)
def test_ghost_parser_fails_only_with_payload_errors(doc):
    try:
        result = parse_ghost_event(doc)
    except PayloadError:
        return
    assert isinstance(result, (list, IgnoredEvent))


@given(doc=documents)
def test_cms_schema_fails_only_with_validation_errors(doc):
    try:
        CmsEvent.model_validate(doc)
    except ValidationError:
        pass


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


ENDPOINT_SETTINGS = hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@ENDPOINT_SETTINGS
@given(body=raw_bodies, name=st.sampled_from(EVENT_NAMES))
async def test_signed_forge_bodies_never_cause_a_server_error(client, body, name):
    forgejo = await send_forgejo(client, name, body)
    github = await send_github(client, name, body)
    assert forgejo.status_code < 500 and github.status_code < 500


@ENDPOINT_SETTINGS
@given(body=raw_bodies)
async def test_signed_cms_and_ghost_bodies_never_cause_a_server_error(client, body):
    cms = await send_cms(client, body)
    ghost = await send_ghost(client, body)
    assert cms.status_code < 500 and ghost.status_code < 500


@ENDPOINT_SETTINGS
@given(
    path=st.sampled_from(["/hooks/cms", "/hooks/ghost", "/hooks/forgejo", "/hooks/github"]),
    body=raw_bodies,
    headers=st.dictionaries(
        st.sampled_from(
            [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "x-ghost-signature",
                "x-forgejo-signature",
                "x-gitea-signature",
                "x-hub-signature-256",
                "x-forgejo-event",
                "x-github-event",
                "content-type",
            ]
        ),  # fmt: skip
        header_values,
        max_size=5,
    ),
)
async def test_arbitrary_headers_never_cause_a_server_error(client, path, body, headers):
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code in (202, 400, 401, 413, 422)
