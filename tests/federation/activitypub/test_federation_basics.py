"""Pure protocol pieces: handles, WebFinger resources, keys, timestamps, shared-inbox grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from federation.activitypub.audience import delivery_inboxes, inbox_host
from federation.activitypub.handles import InvalidHandle, validate_handle
from federation.activitypub.timestamps import format_timestamp, parse_timestamp
from federation.activitypub.webfinger import UnresolvableResource, parse_resource
from federation.signatures.keys import (
    ed25519_public_multibase,
    generate_ed25519_key_pair,
    generate_rsa_key_pair,
    load_rsa_private_key,
)

BASE = "https://news.example.com"
DOMAIN = "news.example.com"


@pytest.mark.parametrize("handle", ["blog", "release_notes", "a", "news.de", "x-y", "_bot"])
def test_valid_handles_are_accepted(handle):
    assert validate_handle(handle) == handle


@pytest.mark.parametrize("handle", ["", "Blog", "with space", "-lead", "trail.", "x" * 65, "é"])
def test_invalid_handles_are_refused(handle):
    with pytest.raises(InvalidHandle):
        validate_handle(handle)


def test_reserved_handles_are_refused():
    with pytest.raises(InvalidHandle, match="reserved"):
        validate_handle("inbox")


@pytest.mark.parametrize(
    "resource",
    [
        "acct:blog@news.example.com",
        "acct:@blog@news.example.com",
        "acct:BLOG@NEWS.example.com",
        "acct%3Ablog%40news.example.com",
        "https://news.example.com/users/blog",
        "https://news.example.com/@blog",
    ],
)
def test_webfinger_resources_naming_a_local_account_resolve(resource):
    assert parse_resource(resource, domain=DOMAIN, base_url=BASE).handle == "blog"


@pytest.mark.parametrize(
    "resource",
    [
        "acct:blog@other.example",
        "acct:blog",
        "acct:@news.example.com",
        "mailto:blog@news.example.com",
        "https://other.example/users/blog",
        "https://news.example.com/users/blog/outbox",
        "https://news.example.com/objects/1",
    ],
)
def test_webfinger_resources_not_served_here_are_unresolvable(resource):
    with pytest.raises(UnresolvableResource):
        parse_resource(resource, domain=DOMAIN, base_url=BASE)


def test_rsa_keys_are_2048_bit_and_sign():
    pair = generate_rsa_key_pair()
    key = load_rsa_private_key(pair.private_pem)
    assert key.key_size == 2048
    signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    public = serialization.load_pem_public_key(pair.public_pem.encode())
    public.verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]


def test_private_key_parsing_is_cached_per_pem():
    pair = generate_rsa_key_pair()
    assert load_rsa_private_key(pair.private_pem) is load_rsa_private_key(pair.private_pem)


def test_ed25519_multibase_is_a_multikey_encoding():
    encoded = ed25519_public_multibase(generate_ed25519_key_pair().public_pem)
    # base58btc of 0xed01 + 32 bytes always starts z6Mk and is 48 characters long.
    assert encoded.startswith("z6Mk")
    assert len(encoded) == 48


def test_timestamps_are_utc_with_z():
    moment = datetime(2026, 5, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2026-05-01T10:30:05Z"
    assert parse_timestamp("2026-05-01T10:30:05Z") == moment.astimezone(UTC)


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 5, 1))  # noqa: DTZ001


def test_followers_sharing_an_inbox_get_one_delivery():
    inboxes = delivery_inboxes(
        [
            ("https://a.example/users/1/inbox", "https://a.example/inbox"),
            ("https://a.example/users/2/inbox", "https://a.example/inbox"),
            ("https://b.example/users/3/inbox", None),
        ]
    )
    assert inboxes == ["https://a.example/inbox", "https://b.example/users/3/inbox"]


def test_inbox_host_keeps_a_non_default_port():
    assert inbox_host("http://127.0.1.5:8080/inbox") == "127.0.1.5:8080"
