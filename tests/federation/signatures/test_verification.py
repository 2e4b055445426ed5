"""The inbox entry point, with the cases Mastodon's own signature verification tests cover."""

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.signatures.cavage import CavageSignature, build_signing_string, sign_request
from federation.signatures.digest import content_digest_header, digest_header
from federation.signatures.errors import (
    DigestMismatch,
    DigestMissing,
    KeyUnusable,
    SignatureCoverageInsufficient,
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    SignatureStale,
    SignatureUnsupported,
)
from federation.signatures.header_fields import collect_header_fields
from federation.signatures.keys import (
    generate_ed25519_key_pair,
    generate_rsa_key_pair,
    load_rsa_private_key,
)
from federation.signatures.rfc9421 import sign_message
from federation.signatures.time_window import format_http_date
from federation.signatures.verification import (
    VerifiedRequest,
    parse_signature,
    verify_signed_request,
    verify_with_key,
)

KEY_ID = "https://remote.example/users/alice#main-key"
ALICE = generate_rsa_key_pair()
MALLORY = generate_rsa_key_pair()
ED = generate_ed25519_key_pair()
NOW = 1_700_000_000.0
INBOX = "https://relay.example/inbox"
BODY = b'{"type":"Follow","actor":"https://remote.example/users/alice"}'


def _lookup(pem: str = ALICE.public_pem) -> Callable[[str], str]:
    def lookup(key_id: str) -> str:
        assert key_id == KEY_ID
        return pem

    return lookup


def _signed(method: str, url: str, body: bytes | None = None, *, at: float = NOW) -> dict[str, str]:
    return {
        "Host": "relay.example",
        **sign_request(method, url, {}, body, KEY_ID, ALICE.private_pem, now=at),
    }


def _verify(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    public_pem: str = ALICE.public_pem,
) -> VerifiedRequest:
    return verify_signed_request(
        method, url, headers, body, now=NOW, key_lookup=_lookup(public_pem)
    )


def _crafted(
    covered: str,
    headers: dict[str, str],
    *,
    method: str = "POST",
    target: str = "/inbox",
    algorithm: str = "rsa-sha256",
    extra: str = "",
    created: int | None = None,
    expires: int | None = None,
) -> dict[str, str]:
    """A draft-cavage signature built by hand, for shapes `sign_request` never produces."""
    signature = CavageSignature(KEY_ID, algorithm, tuple(covered.split()), b"", created, expires)
    signing_string = build_signing_string(
        signature, method=method, target=target, fields=collect_header_fields(headers)
    )
    raw = load_rsa_private_key(ALICE.private_pem).sign(
        signing_string, padding.PKCS1v15(), hashes.SHA256()
    )
    value = (
        f'keyId="{KEY_ID}",algorithm="{algorithm}",headers="{covered}",'
        f'signature="{base64.b64encode(raw).decode()}"{extra}'
    )
    return {**headers, "Signature": value}


def _base_headers(body: bytes | None = BODY, *, date: str | None = None) -> dict[str, str]:
    headers = {"Host": "relay.example", "Date": date or format_http_date(NOW)}
    if body is not None:
        headers["Digest"] = digest_header(body)
    return headers


# --- accepted -------------------------------------------------------------------------------


def test_valid_get_is_accepted() -> None:
    verified = _verify("GET", INBOX, _signed("GET", INBOX))
    assert verified == VerifiedRequest(key_id=KEY_ID, scheme="draft-cavage", algorithm="rsa-sha256")


def test_get_with_query_string_is_accepted() -> None:
    url = "https://relay.example/users/relay/outbox?page=true&min_id=5"
    assert _verify("GET", url, _signed("GET", url)).key_id == KEY_ID


def test_valid_post_is_accepted() -> None:
    assert _verify("POST", INBOX, _signed("POST", INBOX, BODY), BODY).algorithm == "rsa-sha256"


def test_signature_in_authorization_header_is_accepted() -> None:
    headers = _signed("GET", INBOX)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    assert _verify("GET", INBOX, headers).key_id == KEY_ID


def test_hs2019_with_created_instead_of_date_is_accepted() -> None:
    headers = _crafted(
        "(request-target) host (created) digest",
        {"Host": "relay.example", "Digest": digest_header(BODY)},
        algorithm="hs2019",
        created=int(NOW) - 60,
        extra=f",created={int(NOW) - 60}",
    )
    assert _verify("POST", INBOX, headers, BODY).key_id == KEY_ID


def test_expires_may_extend_validity_up_to_twelve_hours() -> None:
    created = int(NOW) - 6 * 3600
    headers = _crafted(
        "(request-target) host (created) (expires) digest",
        {"Host": "relay.example", "Digest": digest_header(BODY)},
        algorithm="hs2019",
        created=created,
        expires=created + 8 * 3600,
        extra=f",created={created},expires={created + 8 * 3600}",
    )
    assert _verify("POST", INBOX, headers, BODY).key_id == KEY_ID


def test_hs2019_signature_with_an_ed25519_key_is_accepted() -> None:
    from federation.signatures.keys import load_ed25519_private_key

    headers = {
        "Host": "relay.example",
        "Date": format_http_date(NOW),
        "Digest": digest_header(BODY),
    }
    covered = "(request-target) host date digest"
    signature = CavageSignature(KEY_ID, "hs2019", tuple(covered.split()), b"")
    signing_string = build_signing_string(
        signature, method="POST", target="/inbox", fields=collect_header_fields(headers)
    )
    raw = load_ed25519_private_key(ED.private_pem).sign(signing_string)
    headers["Signature"] = (
        f'keyId="{KEY_ID}",algorithm="hs2019",headers="{covered}",'
        f'signature="{base64.b64encode(raw).decode()}"'
    )
    assert _verify("POST", INBOX, headers, BODY, public_pem=ED.public_pem).algorithm == "ed25519"


def test_rfc9421_request_is_accepted_through_the_same_entry_point() -> None:
    headers = {
        "Host": "relay.example",
        **sign_message("POST", INBOX, {}, BODY, KEY_ID, ALICE.private_pem, now=NOW),
    }
    verified = _verify("POST", INBOX, headers, BODY)
    assert verified == VerifiedRequest(key_id=KEY_ID, scheme="rfc9421", algorithm="rsa-v1_5-sha256")


# --- refused (Mastodon's cases) -------------------------------------------------------------


def test_unsigned_request_is_missing_and_unauthorized() -> None:
    with pytest.raises(SignatureMissing) as caught:
        _verify("GET", INBOX, {"Host": "relay.example"})
    assert caught.value.status_code == 401


def test_mismatching_query_string_is_invalid() -> None:
    headers = _signed("GET", "https://relay.example/outbox?page=1")
    with pytest.raises(SignatureInvalid):
        _verify("GET", "https://relay.example/outbox?page=2", headers)


def test_mismatching_path_is_invalid() -> None:
    with pytest.raises(SignatureInvalid):
        _verify("GET", "https://relay.example/other", _signed("GET", INBOX))


def test_mismatching_method_is_invalid() -> None:
    with pytest.raises(SignatureInvalid):
        _verify("PUT", INBOX, _signed("POST", INBOX, BODY), BODY)


def test_unparsable_date_is_malformed() -> None:
    headers = _crafted("(request-target) host date digest", _base_headers(date="yesterday at noon"))
    with pytest.raises(SignatureMalformed):
        _verify("POST", INBOX, headers, BODY)


def test_stale_date_is_refused() -> None:
    with pytest.raises(SignatureStale):
        _verify("POST", INBOX, _signed("POST", INBOX, BODY, at=NOW - 3601), BODY)


def test_future_date_is_refused() -> None:
    with pytest.raises(SignatureStale):
        _verify("POST", INBOX, _signed("POST", INBOX, BODY, at=NOW + 3601), BODY)


def test_date_within_an_hour_either_way_is_accepted() -> None:
    _verify("POST", INBOX, _signed("POST", INBOX, BODY, at=NOW - 3500), BODY)
    _verify("POST", INBOX, _signed("POST", INBOX, BODY, at=NOW + 3500), BODY)


def test_post_without_signed_digest_is_refused() -> None:
    headers = _crafted("(request-target) host date", _base_headers())
    with pytest.raises(SignatureCoverageInsufficient, match="digest"):
        _verify("POST", INBOX, headers, BODY)


def test_get_without_signed_host_is_refused() -> None:
    headers = _crafted("(request-target) date", _base_headers(None), method="GET")
    with pytest.raises(SignatureCoverageInsufficient, match="host"):
        _verify("GET", INBOX, headers)


def test_signature_without_any_time_is_refused() -> None:
    headers = _crafted("(request-target) host", _base_headers(None), method="GET")
    with pytest.raises(SignatureCoverageInsufficient, match="date"):
        _verify("GET", INBOX, headers)


def test_covered_header_missing_from_the_request_is_malformed() -> None:
    headers = _crafted(
        "(request-target) host date digest x-custom", {**_base_headers(), "X-Custom": "1"}
    )
    del headers["X-Custom"]
    with pytest.raises(SignatureMalformed, match="x-custom"):
        _verify("POST", INBOX, headers, BODY)


def test_wrong_digest_is_refused_as_a_bad_request() -> None:
    headers = _crafted(
        "(request-target) host date digest", {**_base_headers(), "Digest": digest_header(b"other")}
    )
    with pytest.raises(DigestMismatch) as caught:
        _verify("POST", INBOX, headers, BODY)
    assert caught.value.status_code == 400


def test_body_changed_after_signing_is_refused() -> None:
    with pytest.raises(DigestMismatch):
        _verify("POST", INBOX, _signed("POST", INBOX, BODY), BODY.replace(b"Follow", b"Undo"))


def test_body_changed_after_signing_is_refused_for_rfc9421() -> None:
    headers = {
        "Host": "relay.example",
        **sign_message("POST", INBOX, {}, BODY, KEY_ID, ALICE.private_pem, now=NOW),
    }
    with pytest.raises(DigestMismatch):
        _verify("POST", INBOX, headers, b"{}")


def test_unsigned_content_digest_that_mismatches_is_refused_too() -> None:
    headers = {**_signed("POST", INBOX, BODY), "Content-Digest": content_digest_header(b"other")}
    with pytest.raises(DigestMismatch):
        _verify("POST", INBOX, headers, BODY)


def test_body_on_a_get_must_be_covered() -> None:
    with pytest.raises(DigestMissing):
        _verify("GET", INBOX, _signed("GET", INBOX), b"surprise")


def test_unknown_algorithm_is_unsupported() -> None:
    headers = _crafted("(request-target) host date digest", _base_headers(), algorithm="rsa-sha1")
    with pytest.raises(SignatureUnsupported):
        _verify("POST", INBOX, headers, BODY)


def test_expires_in_the_past_is_refused() -> None:
    created = int(NOW) - 600
    headers = _crafted(
        "(request-target) host (created) (expires) digest",
        {"Host": "relay.example", "Digest": digest_header(BODY)},
        algorithm="hs2019",
        created=created,
        expires=created + 300,
        extra=f",created={created},expires={created + 300}",
    )
    with pytest.raises(SignatureStale):
        _verify("POST", INBOX, headers, BODY)


def test_expires_cannot_stretch_validity_past_twelve_hours() -> None:
    created = int(NOW) - 13 * 3600
    headers = _crafted(
        "(request-target) host (created) (expires) digest",
        {"Host": "relay.example", "Digest": digest_header(BODY)},
        algorithm="hs2019",
        created=created,
        expires=created + 48 * 3600,
        extra=f",created={created},expires={created + 48 * 3600}",
    )
    with pytest.raises(SignatureStale):
        _verify("POST", INBOX, headers, BODY)


def test_signature_from_a_different_key_is_invalid() -> None:
    with pytest.raises(SignatureInvalid):
        _verify("POST", INBOX, _signed("POST", INBOX, BODY), BODY, public_pem=MALLORY.public_pem)


def test_unusable_public_key_is_reported_as_such() -> None:
    with pytest.raises(KeyUnusable):
        _verify(
            "GET", INBOX, _signed("GET", INBOX), public_pem="-----BEGIN PUBLIC KEY-----\nAAAA\n"
        )


# --- the two-step flow ----------------------------------------------------------------------


def test_key_rotation_is_handled_by_verifying_again_with_the_refetched_key() -> None:
    pending = parse_signature("POST", INBOX, _signed("POST", INBOX, BODY), BODY, now=NOW)
    assert pending.key_id == KEY_ID
    with pytest.raises(SignatureInvalid):
        verify_with_key(pending, MALLORY.public_pem)  # the stale, cached key
    assert verify_with_key(pending, ALICE.public_pem).key_id == KEY_ID


def test_doomed_request_never_reaches_the_key_lookup() -> None:
    calls: list[str] = []

    def lookup(key_id: str) -> str:
        calls.append(key_id)
        return ALICE.public_pem

    with pytest.raises(SignatureStale):
        verify_signed_request(
            "POST",
            INBOX,
            _signed("POST", INBOX, BODY, at=NOW - 7200),
            BODY,
            now=NOW,
            key_lookup=lookup,
        )
    assert calls == []


def test_body_digest_is_checked_before_the_signature_is_parsed() -> None:
    headers = {**_base_headers(), "Digest": digest_header(b"other"), "Signature": "garbage"}
    with pytest.raises(DigestMismatch):
        parse_signature("POST", INBOX, headers, BODY, now=NOW)


def test_repeated_header_lines_are_accepted_as_pairs() -> None:
    pairs = list(_signed("GET", INBOX).items())
    assert (
        verify_signed_request("GET", INBOX, pairs, b"", now=NOW, key_lookup=_lookup()).key_id
        == KEY_ID
    )


def test_every_failure_except_digest_problems_is_unauthorized() -> None:
    assert SignatureInvalid("x").unauthorized
    assert SignatureMissing("x").status_code == 401
    assert not DigestMismatch("x").unauthorized


_HEADER_NAMES = st.sampled_from(
    ["Signature", "Signature-Input", "Authorization", "Date", "Digest", "Content-Digest", "Host"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_HEADER_NAMES, st.text(max_size=120)), max_size=6),
    st.sampled_from(["GET", "POST"]),
    st.binary(max_size=32),
)
def test_arbitrary_headers_raise_only_typed_errors(
    pairs: list[tuple[str, str]], method: str, body: bytes
) -> None:
    try:
        verify_signed_request(method, INBOX, pairs, body, now=NOW, key_lookup=_lookup())
    except SignatureError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_signatures_raise_only_typed_errors(data: st.DataObject) -> None:
    headers = _signed("POST", INBOX, BODY)
    name = data.draw(st.sampled_from(sorted(headers)))
    value = headers[name]
    position = data.draw(st.integers(0, len(value)))
    insert = data.draw(st.text(max_size=3))
    headers[name] = value[:position] + insert + value[position + 1 :]
    try:
        verify_signed_request(
            "POST", INBOX, headers, BODY, now=NOW, key_lookup=lambda _: ALICE.public_pem
        )
    except SignatureError:
        pass


def test_ed25519_key_object_types_are_checked() -> None:
    assert isinstance(ed25519.Ed25519PrivateKey.generate().public_key(), ed25519.Ed25519PublicKey)
