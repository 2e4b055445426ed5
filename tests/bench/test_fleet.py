"""The loopback fleet of fake fediverse servers, tested on its own (no relay involved)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.harness.cavage_reference import (
    DRAFT_ONLY_POLICY,
    SignatureError,
    load_public_key,
    parse_signature_header,
    sign_request,
    verify_request,
)
from bench.harness.fleet import Fault, Fleet, FleetActor, FleetTimeout
from bench.harness.fleet_control import RemoteFleet, spawn_fleet
from tests.federation.signatures.signature_test_vectors import (
    CAVAGE_TEST_PRIVATE_KEY,
    CAVAGE_TEST_PUBLIC_KEY,
)

# draft-cavage-http-signatures-12, Appendix C: the test key and the request every example signs.
SPEC_PRIVATE_KEY = CAVAGE_TEST_PRIVATE_KEY
SPEC_PUBLIC_KEY = CAVAGE_TEST_PUBLIC_KEY
SPEC_TARGET = "/foo?param=value&pet=dog"
SPEC_BODY = b'{"hello": "world"}'
SPEC_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Sun, 05 Jan 2014 21:31:40 GMT"),
    ("Content-Type", "application/json"),
    ("Digest", "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="),
    ("Content-Length", "18"),
]
SPEC_MOMENT = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
SPEC_BASIC_SIGNATURE = (
    'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",'
    'signature="qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn'
    "7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn0"
    '4swr2Os0="'
)
SPEC_ALL_HEADERS_SIGNATURE = (
    'keyId="Test",algorithm="rsa-sha256",'
    'headers="(request-target) host date content-type digest content-length",'
    'signature="vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2b'
    "EKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zK"
    'H7s1dE="'
)
SPEC_DEFAULT_SIGNATURE_VALUE = (
    "SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV"
    "5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM="
)


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with Fleet(hosts=3, followers=2, request_timeout=5.0) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def activity_from(
    actor: FleetActor, kind: str = "Like", target: str = "http://x/1"
) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor.id}/activities/{kind.lower()}-{time.monotonic_ns()}",
        "type": kind,
        "actor": actor.id,
        "object": target,
    }


async def post_signed(
    http: aiohttp.ClientSession,
    actor: FleetActor,
    inbox: str,
    activity: dict[str, Any],
    *,
    now: datetime | None = None,
    covered: list[str] | None = None,
    tamper: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST signed with the reference signer, letting a test alter headers/body after signing."""
    body = json.dumps(activity).encode()
    headers = sign_request(
        method="POST",
        url=inbox,
        private_key=actor.key.private_key,
        key_id=actor.key_id,
        body=body,
        covered=covered,
        now=now,
    )
    headers["Content-Type"] = "application/activity+json"
    if tamper is not None:
        body = tamper(headers, body)
    async with http.post(inbox, data=body, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers), body


def independent_signature(
    method: str, url: str, body: bytes, private_key: rsa.RSAPrivateKey, key_id: str
) -> dict[str, str]:
    """A minimal signer written here from the draft, sharing nothing with the harness's
    cavage_reference."""
    target = urlsplit(url)
    headers = {
        "Host": target.netloc,
        "Date": format_datetime(datetime.now(UTC), usegmt=True),
        "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "Content-Type": "application/activity+json",
    }
    # Deliberately not the usual order: the verifier must follow the headers parameter.
    order = ["digest", "date", "host", "(request-target)"]
    lines = []
    for name in order:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target.path}")
        else:
            lines.append(f"{name}: {headers[name.capitalize()]}")
    raw = private_key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(order)}",'
        f'signature="{base64.b64encode(raw).decode()}"'
    )
    return headers


# -- the reference signer and verifier -------------------------------------------------


def test_reference_verifier_accepts_what_the_reference_signer_signed() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = b'{"type": "Like"}'
    headers = sign_request(
        method="POST", url="http://127.0.1.9:80/inbox", private_key=key, key_id="k", body=body
    )
    params = verify_request(
        method="POST",
        request_target="/inbox",
        headers=headers,
        body=body,
        public_key=key.public_key(),
        now=datetime.now(UTC),
    )
    assert params.headers == ("(request-target)", "host", "date", "digest")


def test_signature_header_defaults_covered_headers_to_created_as_draft_12_says() -> None:
    params = parse_signature_header('keyId="k",signature="AAAA"')
    assert params.headers == ("(created)",)


def test_signature_header_with_a_repeated_parameter_is_rejected() -> None:
    with pytest.raises(SignatureError, match="twice"):
        parse_signature_header('keyId="a",keyId="b",signature="AAAA"')


@pytest.mark.parametrize(
    "signature_header", [SPEC_BASIC_SIGNATURE, SPEC_ALL_HEADERS_SIGNATURE], ids=["basic", "all"]
)
def test_reference_verifier_accepts_the_draft_appendix_c_examples(signature_header: str) -> None:
    verify_request(
        method="POST",
        request_target=SPEC_TARGET,
        headers=[*SPEC_HEADERS, ("Signature", signature_header)],
        body=SPEC_BODY,
        public_key=load_public_key(SPEC_PUBLIC_KEY),
        now=SPEC_MOMENT,
        policy=DRAFT_ONLY_POLICY,
    )


def test_reference_signer_reproduces_the_draft_appendix_c_signatures_byte_for_byte() -> None:
    private_key = serialization.load_pem_private_key(SPEC_PRIVATE_KEY.encode(), None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    signed = sign_request(
        method="POST",
        url="http://example.com" + SPEC_TARGET,
        private_key=private_key,
        key_id="Test",
        extra_headers={"Content-Type": "application/json", "Content-Length": "18"},
        body=SPEC_BODY,
        covered=["(request-target)", "host", "date", "content-type", "digest", "content-length"],
        now=SPEC_MOMENT,
    )
    assert signed["Digest"] == dict(SPEC_HEADERS)["Digest"]
    expected = parse_signature_header(SPEC_ALL_HEADERS_SIGNATURE).signature
    assert parse_signature_header(signed["Signature"]).signature == expected
    date_only = sign_request(
        method="POST",
        url="http://example.com" + SPEC_TARGET,
        private_key=private_key,
        key_id="Test",
        covered=["date"],
        now=SPEC_MOMENT,
    )
    default_signature = parse_signature_header(date_only["Signature"]).signature
    assert base64.b64encode(default_signature).decode() == SPEC_DEFAULT_SIGNATURE_VALUE


def test_reference_verifier_rejects_the_appendix_c_example_with_its_body_changed() -> None:
    with pytest.raises(SignatureError, match="Digest does not match"):
        verify_request(
            method="POST",
            request_target=SPEC_TARGET,
            headers=[*SPEC_HEADERS, ("Signature", SPEC_ALL_HEADERS_SIGNATURE)],
            body=b'{"hello": "there"}',
            public_key=load_public_key(SPEC_PUBLIC_KEY),
            now=SPEC_MOMENT,
            policy=DRAFT_ONLY_POLICY,
        )


async def test_fleet_verifier_accepts_the_appendix_c_all_headers_request() -> None:
    async with Fleet(hosts=1, followers=0, clock=SPEC_MOMENT.timestamp) as frozen:
        frozen.trust_key("Test", SPEC_PUBLIC_KEY)
        verified = await frozen.verifier.verify(
            "POST",
            SPEC_TARGET,
            [*SPEC_HEADERS, ("Signature", SPEC_ALL_HEADERS_SIGNATURE)],
            SPEC_BODY,
        )
    assert verified.parameters.key_id == "Test"


async def test_fleet_verifier_rejects_the_appendix_c_basic_request_for_not_covering_digest() -> (
    None
):
    async with Fleet(hosts=1, followers=0, clock=SPEC_MOMENT.timestamp) as frozen:
        frozen.trust_key("Test", SPEC_PUBLIC_KEY)
        with pytest.raises(SignatureError, match="does not cover digest"):
            await frozen.verifier.verify(
                "POST", SPEC_TARGET, [*SPEC_HEADERS, ("Signature", SPEC_BASIC_SIGNATURE)], SPEC_BODY
            )


# -- inbox verification over HTTP ------------------------------------------------------


async def test_inbox_accepts_an_activity_signed_by_the_fleet_signer(fleet: Fleet) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    result = await fleet.send(sender, activity_from(sender), receiver.inbox)
    assert result.status == 202
    [arrival] = fleet.arrivals
    assert arrival.verified and arrival.key_id == sender.key_id


async def test_inbox_accepts_an_activity_signed_by_an_independent_signer(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender, receiver = fleet.actor(2, 1), fleet.actor(0, 1)
    body = json.dumps(activity_from(sender)).encode()
    headers = independent_signature(
        "POST", receiver.inbox, body, sender.key.private_key, sender.key_id
    )
    async with http.post(receiver.inbox, data=body, headers=headers) as response:
        assert response.status == 202
    assert fleet.arrivals[0].verified


def _replace_body(headers: dict[str, str], body: bytes) -> bytes:
    return body.replace(b"Like", b"Boost")


def _replace_body_and_digest(headers: dict[str, str], body: bytes) -> bytes:
    changed = body.replace(b"Like", b"Boost")
    headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(changed).digest()).decode()
    return changed


def _replace_host(headers: dict[str, str], body: bytes) -> bytes:
    headers["Host"] = "127.0.1.250:1"
    return body


def _drop_signature(headers: dict[str, str], body: bytes) -> bytes:
    del headers["Signature"]
    return body


def _replace_date(headers: dict[str, str], body: bytes) -> bytes:
    later = datetime.now(UTC) + timedelta(seconds=5)
    headers["Date"] = format_datetime(later, usegmt=True)
    return body


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_replace_body, "Digest does not match"),
        (_replace_body_and_digest, "does not verify"),
        (_replace_host, "does not verify"),
        (_replace_date, "does not verify"),
        (_drop_signature, "not signed"),
    ],
    ids=["body", "digest", "host", "date", "unsigned"],
)
async def test_inbox_rejects_a_request_altered_after_signing(
    fleet: Fleet, http: aiohttp.ClientSession, tamper: Any, reason: str
) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 1)
    status, headers, _ = await post_signed(
        http, sender, receiver.inbox, activity_from(sender), tamper=tamper
    )
    assert status == 401
    assert headers["Content-Type"].startswith("application/problem+json")
    assert fleet.signature_failures == 1
    assert reason in (fleet.arrivals[0].failure or "")


async def test_inbox_rejects_a_date_more_than_an_hour_old(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    old = datetime.now(UTC) - timedelta(hours=1, minutes=5)
    status, _, _ = await post_signed(http, sender, receiver.inbox, activity_from(sender), now=old)
    assert status == 401
    assert "clock skew" in (fleet.arrivals[0].failure or "")


async def test_inbox_rejects_a_signature_that_does_not_cover_the_digest(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    status, _, _ = await post_signed(
        http,
        sender,
        receiver.inbox,
        activity_from(sender),
        covered=["(request-target)", "host", "date"],
    )
    assert status == 401
    assert "does not cover digest" in (fleet.arrivals[0].failure or "")


async def test_inbox_rejects_a_request_signed_for_another_inbox(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    body = json.dumps(activity_from(sender)).encode()
    headers = sign_request(
        method="POST",
        url=receiver.shared_inbox,
        private_key=sender.key.private_key,
        key_id=sender.key_id,
        body=body,
    )
    async with http.post(receiver.inbox, data=body, headers=headers) as response:
        assert response.status == 401


async def test_inbox_rejects_an_activity_whose_actor_is_not_the_signer(fleet: Fleet) -> None:
    sender, impersonated = fleet.actor(0, 0), fleet.actor(0, 1)
    result = await fleet.send(sender, activity_from(impersonated), fleet.actor(1, 0).inbox)
    assert result.status == 401
    assert "signed by" in (fleet.arrivals[0].failure or "")


async def test_verifier_fetches_the_key_again_when_the_sender_rotated_it(fleet: Fleet) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    assert (await fleet.send(sender, activity_from(sender), receiver.inbox)).status == 202
    sender.key = fleet.actor(0, 1).key
    assert (await fleet.send(sender, activity_from(sender), receiver.inbox)).status == 202
    assert fleet.resolver.fetches == 2


async def test_key_of_a_non_loopback_host_is_never_fetched(fleet: Fleet) -> None:
    with pytest.raises(SignatureError, match="not on a loopback host"):
        await fleet.resolver.resolve("https://example.com/users/a#main-key")


async def test_rfc9421_only_request_is_refused_without_counting_as_a_signature_failure(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(1, 0)
    headers = {
        "Signature-Input": f'sig1=("@method" "@target-uri");keyid="{sender.key_id}";created=1',
        "Signature": "sig1=:AAAA:",
        "Content-Type": "application/activity+json",
    }
    async with http.post(receiver.inbox, data=b"{}", headers=headers) as response:
        assert response.status == 401
    assert fleet.unsupported_scheme_rejections == 1
    assert fleet.signature_failures == 0


# -- documents -------------------------------------------------------------------------


async def test_actor_document_names_inboxes_and_key(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    actor = fleet.actor(2, 1)
    async with http.get(actor.id) as response:
        assert response.content_type == "application/activity+json"
        document = await response.json(content_type=None)
    assert document["id"] == actor.id
    assert document["inbox"] == f"{fleet.hosts[2].base_url}/users/follower1/inbox"
    assert document["endpoints"]["sharedInbox"] == f"{fleet.hosts[2].base_url}/inbox"
    assert document["publicKey"]["id"] == f"{actor.id}#main-key"
    assert document["publicKey"]["owner"] == actor.id
    assert document["publicKey"]["publicKeyPem"] == actor.key.public_pem


async def test_each_host_listens_on_its_own_loopback_address(fleet: Fleet) -> None:
    assert [host.address for host in fleet.hosts] == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    assert len({host.port for host in fleet.hosts}) == 1


async def test_actors_have_distinct_key_ids(fleet: Fleet) -> None:
    key_ids = [actor.key_id for actor in fleet.followers]
    assert len(set(key_ids)) == len(fleet.followers) == 6


async def test_webfinger_resolves_an_account_to_its_actor(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    host = fleet.hosts[1]
    url = f"{host.base_url}/.well-known/webfinger?resource=acct:follower0@{host.domain}"
    async with http.get(url) as response:
        assert response.content_type == "application/jrd+json"
        document = await response.json(content_type=None)
    assert document["subject"] == f"acct:follower0@{host.domain}"
    [self_link] = [link for link in document["links"] if link["rel"] == "self"]
    assert self_link == {
        "rel": "self",
        "type": "application/activity+json",
        "href": f"{host.base_url}/users/follower0",
    }


@pytest.mark.parametrize("account", ["nobody@{domain}", "follower0@elsewhere.example"])
async def test_webfinger_answers_404_for_unknown_accounts(
    fleet: Fleet, http: aiohttp.ClientSession, account: str
) -> None:
    host = fleet.hosts[0]
    resource = "acct:" + account.format(domain=host.domain)
    async with http.get(f"{host.base_url}/.well-known/webfinger?resource={resource}") as response:
        assert response.status == 404


async def test_unknown_actor_answers_404(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fleet.hosts[0].base_url}/users/nobody") as response:
        assert response.status == 404


# -- arrivals --------------------------------------------------------------------------


async def test_arrival_records_what_reached_which_inbox(fleet: Fleet) -> None:
    sender, receiver = fleet.actor(0, 0), fleet.actor(2, 0)
    activity = activity_from(sender, "Announce")
    before = time.monotonic()
    await fleet.send(sender, activity, receiver.shared_inbox)
    [arrival] = fleet.deliveries_for(activity["id"])
    assert arrival.activity_type == "Announce"
    assert arrival.inbox_url == fleet.hosts[2].shared_inbox
    assert arrival.host == fleet.hosts[2].domain
    assert arrival.actor == sender.id
    assert before <= arrival.arrived_at <= time.monotonic()


async def test_the_same_activity_arriving_twice_at_one_inbox_counts_as_a_duplicate(
    fleet: Fleet,
) -> None:
    sender = fleet.actor(0, 0)
    activity = activity_from(sender)
    for inbox in (
        fleet.hosts[1].shared_inbox,
        fleet.hosts[1].shared_inbox,
        fleet.hosts[2].shared_inbox,
    ):
        await fleet.send(sender, activity, inbox)
    assert fleet.duplicates() == {(activity["id"], fleet.hosts[1].shared_inbox): 2}
    assert len(fleet.deliveries_for(activity["id"])) == 3


async def test_wait_for_returns_once_enough_deliveries_arrived(fleet: Fleet) -> None:
    sender = fleet.actor(0, 0)
    activity = activity_from(sender)
    waiter = asyncio.create_task(fleet.wait_for(activity["id"], count=2, timeout=5))
    await asyncio.gather(*(fleet.send(sender, activity, h.shared_inbox) for h in fleet.hosts[1:]))
    arrivals = await waiter
    assert {arrival.host for arrival in arrivals} == {h.domain for h in fleet.hosts[1:]}


async def test_wait_for_gives_up_after_its_timeout(fleet: Fleet) -> None:
    started = time.monotonic()
    with pytest.raises(FleetTimeout, match="0 of 1"):
        await fleet.wait_for("http://nowhere/activity", count=1, timeout=0.3)
    assert time.monotonic() - started < 2


async def test_rejected_arrivals_do_not_count_as_deliveries(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    sender = fleet.actor(0, 0)
    activity = activity_from(sender)
    await post_signed(http, sender, fleet.hosts[1].shared_inbox, activity, tamper=_replace_body)
    assert fleet.deliveries_for(activity["id"]) == []
    assert fleet.arrivals[0].verified is False


# -- following -------------------------------------------------------------------------


async def test_follow_sends_a_signed_follow_to_the_targets_shared_inbox(fleet: Fleet) -> None:
    target = fleet.actor(2, 0)
    report = await fleet.follow(target.id, actors=list(fleet.hosts[0].actors.values()))
    assert report.sent == 2 and not report.failed
    follows = [arrival for arrival in fleet.arrivals if arrival.activity_type == "Follow"]
    assert {arrival.inbox_url for arrival in follows} == {fleet.hosts[2].shared_inbox}
    assert all(arrival.verified for arrival in follows)
    assert {a.activity["object"] for a in follows if a.activity} == {target.id}


async def test_wait_for_accepts_returns_when_every_follow_was_accepted(fleet: Fleet) -> None:
    target, followers = fleet.actor(2, 0), list(fleet.hosts[0].actors.values())
    await fleet.follow(target.id, actors=followers)
    for arrival in [a for a in fleet.arrivals if a.activity_type == "Follow"]:
        assert arrival.activity is not None and arrival.actor is not None
        accept = activity_from(target, "Accept", target=arrival.activity)
        follower = next(f for f in followers if f.id == arrival.actor)
        assert (await fleet.send(target, accept, follower.inbox)).status == 202
    assert await fleet.wait_for_accepts(timeout=5) == 2


async def test_wait_for_accepts_times_out_without_accepts(fleet: Fleet) -> None:
    await fleet.follow(fleet.actor(2, 0).id, actors=[fleet.actor(0, 0)])
    with pytest.raises(FleetTimeout, match="1 follows still unanswered"):
        await fleet.wait_for_accepts(timeout=0.3)


async def test_an_accept_from_someone_other_than_the_followed_actor_is_ignored(
    fleet: Fleet,
) -> None:
    target, follower, stranger = fleet.actor(2, 0), fleet.actor(0, 0), fleet.actor(1, 0)
    await fleet.follow(target.id, actors=[follower])
    follow_id = fleet.arrivals[0].activity_id
    await fleet.send(stranger, activity_from(stranger, "Accept", target=follow_id), follower.inbox)
    assert fleet.follows_unanswered == 1


# -- activities sent to a relay (here another fleet actor stands in for it) ------------


async def test_like_announce_and_undo_reach_the_relay_signed(fleet: Fleet) -> None:
    relay, sender = fleet.actor(2, 0), fleet.actor(0, 0)
    liked = await fleet.like(sender, relay.id, "http://127.0.1.3/notes/1")
    boosted = await fleet.announce(sender, relay.id, "http://127.0.1.3/notes/1")
    undone = await fleet.undo(sender, relay.id, liked.activity)
    assert [r.status for r in (liked, boosted, undone)] == [202, 202, 202]
    assert [a.activity_type for a in fleet.arrivals] == ["Like", "Announce", "Undo"]
    assert all(a.verified and a.inbox_url == relay.shared_inbox for a in fleet.arrivals)
    undo_body = fleet.arrivals[2].activity
    assert undo_body is not None and undo_body["object"]["id"] == liked.activity["id"]


async def test_reply_is_served_at_its_id_until_deleted(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    relay, sender = fleet.actor(2, 0), fleet.actor(0, 0)
    replied = await fleet.reply(sender, relay.id, in_reply_to="http://127.0.1.3/notes/1")
    note_id = replied.activity["object"]["id"]
    async with http.get(note_id) as response:
        assert (await response.json(content_type=None))["inReplyTo"] == "http://127.0.1.3/notes/1"
    deleted = await fleet.delete(sender, relay.id, note_id)
    assert deleted.activity["object"] == {"id": note_id, "type": "Tombstone"}
    async with http.get(note_id) as response:
        assert response.status == 410


async def test_move_makes_the_target_name_the_mover_as_an_alias(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    relay, mover, target = fleet.actor(2, 0), fleet.actor(0, 0), fleet.actor(1, 0)
    moved = await fleet.move(mover, relay.id, target)
    assert moved.status == 202 and moved.activity["target"] == target.id
    async with http.get(target.id) as response:
        assert (await response.json(content_type=None))["alsoKnownAs"] == [mover.id]
    async with http.get(mover.id) as response:
        assert (await response.json(content_type=None))["movedTo"] == target.id


async def test_deleted_actor_answers_410_after_its_delete_was_sent(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    relay, leaver = fleet.actor(2, 0), fleet.actor(0, 1)
    sent = await fleet.delete_actor(leaver, relay.id)
    assert sent.status == 202 and sent.activity["object"] == leaver.id
    async with http.get(leaver.id) as response:
        assert response.status == 410


# -- faults ----------------------------------------------------------------------------


async def test_server_error_fault_answers_500(fleet: Fleet) -> None:
    await fleet.inject(Fault.server_error(), hosts=[1])
    sender = fleet.actor(0, 0)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 500
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[2].shared_inbox)
    ).status == 202
    assert fleet.fault_responses["server_error"] == 1


async def test_gone_fault_answers_410(fleet: Fleet) -> None:
    await fleet.inject(Fault.gone(), hosts=[1])
    sender = fleet.actor(0, 0)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 410


async def test_rate_limit_fault_answers_429_with_retry_after(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    await fleet.inject(Fault.rate_limited(retry_after=7), hosts=[1])
    sender = fleet.actor(0, 0)
    status, headers, _ = await post_signed(
        http, sender, fleet.hosts[1].shared_inbox, activity_from(sender)
    )
    assert status == 429
    assert headers["Retry-After"] == "7"


async def test_refuse_fault_refuses_connections_until_cleared(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    host = fleet.hosts[1]
    await fleet.inject(Fault.refuse(), hosts=[host])
    with pytest.raises(aiohttp.ClientConnectorError):
        async with http.get(f"{host.base_url}/users/follower0"):
            pass
    await fleet.clear_faults([host])
    async with http.get(f"{host.base_url}/users/follower0") as response:
        assert response.status == 200


async def test_refuse_fault_drops_connections_already_open(fleet: Fleet) -> None:
    host = fleet.hosts[1]
    async with aiohttp.ClientSession() as keep_alive:
        async with keep_alive.get(f"{host.base_url}/users/follower0") as response:
            assert response.status == 200
        await fleet.inject(Fault.refuse(), hosts=[host])
        with pytest.raises(aiohttp.ClientError):
            async with keep_alive.get(f"{host.base_url}/users/follower0"):
                pass


async def test_refuse_fault_with_a_duration_listens_again_afterwards(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    host = fleet.hosts[2]
    await fleet.inject(Fault.refuse(), hosts=[host], duration=0.3)
    assert not host.listening
    await asyncio.sleep(0.5)
    async with http.get(f"{host.base_url}/users/follower0") as response:
        assert response.status == 200


async def test_fail_first_fault_fails_n_requests_then_recovers(fleet: Fleet) -> None:
    await fleet.inject(Fault.fail_first(2, status=503), hosts=[1])
    sender = fleet.actor(0, 0)
    statuses = [
        (await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)).status
        for _ in range(3)
    ]
    assert statuses == [503, 503, 202]


async def test_fault_with_a_duration_ends_by_itself(fleet: Fleet) -> None:
    await fleet.inject(Fault.server_error(), hosts=[1], duration=0.2)
    sender = fleet.actor(0, 0)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 500
    await asyncio.sleep(0.3)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 202


async def test_fault_starting_later_leaves_the_host_healthy_until_then(fleet: Fleet) -> None:
    await fleet.inject(Fault.server_error(), hosts=[1], start_in=0.3)
    sender = fleet.actor(0, 0)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 202
    await asyncio.sleep(0.4)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 500


async def test_inbox_only_fault_still_serves_actor_documents(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    await fleet.inject(Fault.server_error(inbox_only=True), hosts=[1])
    async with http.get(fleet.actor(1, 0).id) as response:
        assert response.status == 200
    sender = fleet.actor(0, 0)
    assert (
        await fleet.send(sender, activity_from(sender), fleet.hosts[1].shared_inbox)
    ).status == 500


async def test_slow_body_fault_sends_the_body_a_byte_at_a_time(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    host = fleet.hosts[1]
    await fleet.inject(Fault.slow_body(byte_interval=0.1, body_bytes=4), hosts=[host])
    started = time.monotonic()
    async with http.get(f"{host.base_url}/users/follower0") as response:
        headers_after = time.monotonic() - started
        body = await response.read()
    total = time.monotonic() - started
    assert body == b"...."
    assert headers_after < 0.3 <= total


async def test_fault_on_a_fraction_of_hosts_picks_that_many_hosts() -> None:
    async with Fleet(hosts=20, followers=0) as big:
        chosen = await big.inject(Fault.server_error(), fraction=0.25)
        assert len(chosen) == 5
        assert sum(1 for host in big.hosts if host.faults) == 5


# -- scale and separate process --------------------------------------------------------


async def test_a_thousand_hosts_with_ten_followers_each_start_within_seconds() -> None:
    started = time.perf_counter()
    async with Fleet(hosts=1000, followers=10) as big:
        elapsed = time.perf_counter() - started
        assert len(big.followers) == 10_000
        last = big.hosts[-1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{last.base_url}/users/follower9") as response:
                assert response.status == 200
    assert elapsed < 5.0


async def test_fleet_runs_as_a_separate_process_and_is_driven_over_http() -> None:
    spawned = await spawn_fleet("--hosts", "3", "--followers", "2", "--max-seconds", "60")
    try:
        assert len(spawned.ready["hosts"]) == 3 and spawned.ready["actors"] == 6
        async with RemoteFleet(spawned.control_url) as remote:
            chosen = await remote.inject("gone", hosts=[0])
            assert chosen == [spawned.ready["hosts"][0]]
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{chosen[0]}/inbox", data=b"{}") as response:
                    assert response.status == 410
            assert (await remote.state())["fault_responses"] == {"gone": 1}
            await remote.shutdown()
        assert await asyncio.wait_for(spawned.process.wait(), 10) == 0
    finally:
        await spawned.stop()
