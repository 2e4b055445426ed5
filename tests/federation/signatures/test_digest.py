import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.signatures.digest import (
    content_digest_header,
    digest_header,
    verify_content_digest_header,
    verify_digest_header,
)
from federation.signatures.errors import DigestMalformed, DigestMismatch
from tests.federation.signatures.signature_test_vectors import (
    CAVAGE_REQUEST_BODY,
    RFC9421_REQUEST_HEADERS,
)

BODY = b'{"type": "Create"}'


def test_digest_header_matches_the_draft_cavage_example() -> None:
    assert (
        digest_header(CAVAGE_REQUEST_BODY) == "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
    )


def test_content_digest_sha512_matches_the_rfc_9421_example() -> None:
    expected = RFC9421_REQUEST_HEADERS["Content-Digest"]
    assert content_digest_header(CAVAGE_REQUEST_BODY, "sha-512") == expected


def test_content_digest_of_empty_body_matches_rfc_9530_example() -> None:
    # RFC 9530 section 2: the sha-256 digest of an empty representation.
    assert content_digest_header(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


def test_digest_verifies_its_own_body() -> None:
    verify_digest_header(digest_header(BODY), BODY)


def test_digest_algorithm_name_is_case_insensitive() -> None:
    verify_digest_header(digest_header(BODY).replace("SHA-256", "sha-256"), BODY)


def test_digest_refuses_a_changed_body() -> None:
    with pytest.raises(DigestMismatch):
        verify_digest_header(digest_header(BODY), BODY + b" ")


def test_digest_refuses_when_any_known_member_mismatches() -> None:
    value = digest_header(BODY) + ",SHA-512=" + "A" * 88
    with pytest.raises(DigestMismatch):
        verify_digest_header(value, BODY)


def test_digest_with_only_unknown_algorithms_is_malformed() -> None:
    with pytest.raises(DigestMalformed):
        verify_digest_header("MD5=HUXZLQLMuI/KZ5KDcJPcOA==", BODY)


def test_digest_with_invalid_base64_is_malformed() -> None:
    with pytest.raises(DigestMalformed):
        verify_digest_header("SHA-256=not base64!", BODY)


def test_content_digest_verifies_its_own_body() -> None:
    verify_content_digest_header(content_digest_header(BODY), BODY)


def test_content_digest_refuses_a_changed_body() -> None:
    with pytest.raises(DigestMismatch):
        verify_content_digest_header(content_digest_header(BODY), b"{}")


def test_content_digest_that_is_not_a_dictionary_is_malformed() -> None:
    with pytest.raises(DigestMalformed):
        verify_content_digest_header("sha-256=abc def", BODY)


def test_content_digest_repeating_an_algorithm_is_malformed() -> None:
    # With the last member winning, a wrong first sha-256 would go unnoticed here while
    # another reader of the same field checks it.
    value = content_digest_header(b"forged") + ", " + content_digest_header(BODY)
    with pytest.raises(DigestMalformed, match="duplicate"):
        verify_content_digest_header(value, BODY)


def test_content_digest_member_that_is_not_bytes_is_malformed() -> None:
    with pytest.raises(DigestMalformed):
        verify_content_digest_header('sha-256="abc"', BODY)


@given(st.text(max_size=300), st.binary(max_size=64))
def test_digest_parsers_raise_only_typed_errors(value: str, body: bytes) -> None:
    for verify in (verify_digest_header, verify_content_digest_header):
        try:
            verify(value, body)
        except (DigestMalformed, DigestMismatch):
            pass
