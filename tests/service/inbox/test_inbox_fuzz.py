"""Arbitrary requests to the inboxes never cause a server error, and nothing without a
valid signature leaves a trace in the database.

Key ids in generated signatures point only at loopback addresses (the fleet, or a closed
port), so the fuzzing never reaches beyond this machine.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bench.harness.fleet import Fleet
from federation.signatures.digest import digest_header
from federation.signatures.time_window import format_http_date
from service.db.engine import Database
from service.db.models import Account, InboxActivity, RemoteActor
from service.runtime.settings import Settings
from tests.federation_peers import create_account, signed_headers

pytest_plugins = ("tests.fleet_fixture",)

FUZZ_SETTINGS = hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED_UNSIGNED = {400, 401, 403, 404, 413, 422}

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)
activity_like = st.fixed_dictionaries(
    {},
    optional={
        "@context": st.just("https://www.w3.org/ns/activitystreams"),
        "id": st.text(max_size=60) | st.just("http://127.0.1.1/activities/1"),
        "type": st.sampled_from(["Follow", "Like", "Announce", "Create", "Delete", "Undo", "Move"])
        | st.text(max_size=10)
        | st.integers(),
        "actor": st.text(max_size=60) | json_values,
        "object": json_values,
        "target": json_values,
    },
)
bodies = (
    st.binary(max_size=400)
    | json_values.map(lambda value: json.dumps(value).encode())
    | activity_like.map(lambda value: json.dumps(value).encode())
)


FLEET_KEY = "{fleet-key-id}"


def key_ids() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [FLEET_KEY, "http://127.0.0.1:1/users/x#main-key", "not a url", "", "https://"]
    ) | header_text.filter(lambda text: "://" not in text)


def signature_fields() -> st.SearchStrategy[str]:
    covered = st.sampled_from(
        [
            "(request-target) host date digest",
            "(request-target) host date",
            "date",
            "(request-target) (created) host digest",
            "",
        ]
    )
    signature = st.binary(min_size=0, max_size=300).map(lambda raw: base64.b64encode(raw).decode())
    algorithm = st.sampled_from(["rsa-sha256", "hs2019", "ed25519", "hmac-sha256", ""])
    structured = st.builds(
        lambda key_id, alg, headers, sig: (
            f'keyId="{key_id}",algorithm="{alg}",headers="{headers}",signature="{sig}"'
        ),
        key_ids(),
        algorithm,
        covered,
        signature,
    )
    return structured | header_text


def header_sets() -> st.SearchStrategy[dict[str, str]]:
    dates = (
        st.sampled_from(
            [format_http_date(time.time()), format_http_date(time.time() - 7200), "yesterday"]
        )
        | header_text
    )
    digests = st.sampled_from(["SHA-256=", "SHA-256=" + "A" * 44, "MD5=abc"]) | header_text
    return st.fixed_dictionaries(
        {},
        optional={
            "Signature": signature_fields(),
            "Authorization": header_text,
            "Date": dates,
            "Digest": digests,
            "Content-Type": st.sampled_from(
                ["application/activity+json", "application/json", "text/plain"]
            )
            | header_text,
            "Signature-Input": header_text,
            "Content-Digest": header_text,
        },
    )


async def row_count(database: Database, model: Any) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def news(database: Database) -> Account:
    return await create_account(database)


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(["/inbox", "/users/news/inbox", "/users/nobody/inbox"]),
    headers=header_sets(),
    body=bodies,
)
async def test_unsigned_or_badly_signed_requests_never_fail_or_persist(
    client: httpx.AsyncClient,
    database: Database,
    fleet: Fleet,
    news: Account,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    actor = fleet.actor(0, 0)
    concrete = {name: value.replace(FLEET_KEY, actor.key_id) for name, value in headers.items()}
    response = await client.post(path, content=body, headers=concrete)
    assert response.status_code in ALLOWED_UNSIGNED, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert await row_count(database, InboxActivity) == 0


@FUZZ_SETTINGS
@given(body=bodies)
async def test_validly_signed_arbitrary_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, database: Database, settings: Settings, fleet: Fleet, body: bytes
) -> None:
    actor = fleet.actor(0, 0)
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code in {202, 400, 401, 403}, (response.status_code, response.text)
    if response.status_code == 401:
        # Only a body naming another actor than the signer is refused that way.
        assert response.json()["type"].endswith("/actor-mismatch")
    # Arbitrary bodies never name the fleet actor as their actor, so none is stored.
    assert await row_count(database, InboxActivity) == 0


@FUZZ_SETTINGS
@given(body=bodies, other=st.binary(min_size=1, max_size=50))
async def test_digest_of_a_fuzzed_body_is_checked_before_any_key_fetch(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    fleet: Fleet,
    body: bytes,
    other: bytes,
) -> None:
    actor = fleet.actor(0, 0)
    headers = signed_headers(actor, f"{settings.base_url}/inbox", body)
    headers["Digest"] = digest_header(body + other)
    response = await client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert await row_count(database, RemoteActor) == 0
