import base64
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.signatures.cavage import (
    CavageSignature,
    _parse_parameters,
    _parse_parameters_by_character,
    build_signing_string,
    check_coverage,
    parse_signature_header,
    sign_request,
    signature_field,
    verify_request_signature,
    verify_signature_bytes,
)
from federation.signatures.digest import digest_header
from federation.signatures.errors import (
    KeyUnusable,
    SignatureCoverageInsufficient,
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    SignatureStale,
    SignatureUnsupported,
)
from federation.signatures.header_fields import collect_header_fields, collect_raw_header_fields
from federation.signatures.keys import generate_rsa_key_pair, load_rsa_private_key
from federation.signatures.public_keys import load_public_key
from federation.signatures.time_window import format_http_date, parse_http_date
from tests.federation.signatures.signature_test_vectors import (
    CAVAGE_ALL_HEADERS_SIGNATURE,
    CAVAGE_BASIC_SIGNATURE,
    CAVAGE_DEFAULT_SIGNATURE,
    CAVAGE_REQUEST_HEADERS,
    CAVAGE_REQUEST_TIME,
    CAVAGE_REQUEST_URL,
    CAVAGE_TEST_PRIVATE_KEY,
    CAVAGE_TEST_PUBLIC_KEY,
)

SPEC_PUBLIC_KEY = serialization.load_pem_public_key(CAVAGE_TEST_PUBLIC_KEY.encode())
SPEC_PRIVATE_KEY = serialization.load_pem_private_key(CAVAGE_TEST_PRIVATE_KEY.encode(), None)
SPEC_FIELDS = collect_header_fields(CAVAGE_REQUEST_HEADERS)
SPEC_TARGET = "/foo?param=value&pet=dog"
KEYS = generate_rsa_key_pair()
NOW = 1_700_000_000.0
INBOX = "https://relay.example/inbox"


def _spec_signing_string(header: str) -> bytes:
    return build_signing_string(
        parse_signature_header(header), method="POST", target=SPEC_TARGET, fields=SPEC_FIELDS
    )


def _sign_with_spec_key(signing_string: bytes) -> str:
    assert isinstance(SPEC_PRIVATE_KEY, rsa.RSAPrivateKey)
    signature = SPEC_PRIVATE_KEY.sign(signing_string, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


# --- the draft's Appendix C vectors ---------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [CAVAGE_DEFAULT_SIGNATURE, CAVAGE_BASIC_SIGNATURE, CAVAGE_ALL_HEADERS_SIGNATURE],
    ids=["C.1 default", "C.2 basic", "C.3 all headers"],
)
def test_appendix_c_signature_verifies_with_the_spec_key(header: str) -> None:
    assert isinstance(SPEC_PUBLIC_KEY, rsa.RSAPublicKey)
    signature = parse_signature_header(header)
    algorithm = verify_signature_bytes(signature, _spec_signing_string(header), SPEC_PUBLIC_KEY)
    assert algorithm == "rsa-sha256"


@pytest.mark.parametrize(
    "header",
    [CAVAGE_DEFAULT_SIGNATURE, CAVAGE_BASIC_SIGNATURE, CAVAGE_ALL_HEADERS_SIGNATURE],
    ids=["C.1 default", "C.2 basic", "C.3 all headers"],
)
def test_signing_the_appendix_c_string_reproduces_the_spec_signature(header: str) -> None:
    expected = header.split('signature="', 1)[1].rstrip('"')
    assert _sign_with_spec_key(_spec_signing_string(header)) == expected


def test_appendix_c_basic_signing_string_is_the_one_printed_in_the_draft() -> None:
    assert _spec_signing_string(CAVAGE_BASIC_SIGNATURE) == (
        b"(request-target): post /foo?param=value&pet=dog\n"
        b"host: example.com\n"
        b"date: Sun, 05 Jan 2014 21:31:40 GMT"
    )


def test_appendix_c_all_headers_passes_the_full_post_checks() -> None:
    assert isinstance(SPEC_PUBLIC_KEY, rsa.RSAPublicKey)
    algorithm = verify_request_signature(
        parse_signature_header(CAVAGE_ALL_HEADERS_SIGNATURE),
        method="POST",
        url=CAVAGE_REQUEST_URL,
        headers=CAVAGE_REQUEST_HEADERS,
        public_key=SPEC_PUBLIC_KEY,
        now=CAVAGE_REQUEST_TIME,
    )
    assert algorithm == "rsa-sha256"


def test_appendix_c_basic_is_refused_for_a_post_because_the_body_is_unsigned() -> None:
    with pytest.raises(SignatureCoverageInsufficient, match="digest"):
        check_coverage(parse_signature_header(CAVAGE_BASIC_SIGNATURE), method="POST")


def test_spec_key_is_too_small_to_be_accepted_from_a_remote_actor() -> None:
    with pytest.raises(KeyUnusable):
        load_public_key(CAVAGE_TEST_PUBLIC_KEY)


# --- signing --------------------------------------------------------------------------------


def _verify_own(method: str, url: str, headers: dict[str, str], now: float = NOW) -> str:
    fields = collect_header_fields(headers)
    raw = signature_field(fields)
    assert raw is not None
    return verify_request_signature(
        parse_signature_header(raw),
        method=method,
        url=url,
        headers=headers,
        public_key=load_public_key(KEYS.public_pem),
        now=now,
    )


def test_signed_post_adds_date_digest_and_signature() -> None:
    body = b'{"type":"Follow"}'
    added = sign_request(
        "POST", INBOX, {}, body, "https://relay.example/actor#main-key", KEYS.private_pem, now=NOW
    )
    assert added["Date"] == format_http_date(NOW)
    assert added["Digest"] == digest_header(body)
    assert 'headers="(request-target) host date digest"' in added["Signature"]
    assert 'algorithm="rsa-sha256"' in added["Signature"]
    assert _verify_own("POST", INBOX, {"Host": "relay.example", **added}) == "rsa-sha256"


def test_signed_get_covers_request_target_host_and_date_only() -> None:
    url = "https://remote.example/users/alice?page=2"
    added = sign_request("GET", url, {}, None, "k", KEYS.private_pem, now=NOW)
    assert set(added) == {"Date", "Signature"}
    signature = parse_signature_header(added["Signature"])
    assert signature.headers == ("(request-target)", "host", "date")
    signing_string = build_signing_string(
        signature,
        method="GET",
        target="/users/alice?page=2",
        fields=collect_header_fields({"Host": "remote.example", **added}),
    )
    assert signing_string.startswith(
        b"(request-target): get /users/alice?page=2\nhost: remote.example\n"
    )


def test_signed_host_includes_a_non_default_port_only() -> None:
    with_port = sign_request("GET", "https://h.example:8443/x", {}, None, "k", KEYS.private_pem)
    default = sign_request("GET", "https://H.example:443/x", {}, None, "k", KEYS.private_pem)
    _verify_own(
        "GET", "https://h.example:8443/x", {"Host": "h.example:8443", **with_port}, time.time()
    )
    _verify_own("GET", "https://h.example/x", {"Host": "h.example", **default}, time.time())


def test_signing_keeps_a_date_and_digest_the_caller_already_set() -> None:
    headers = {"Date": format_http_date(NOW), "Digest": digest_header(b"x")}
    added = sign_request("POST", INBOX, headers, b"x", "k", KEYS.private_pem)
    assert set(added) == {"Signature"}


def test_signing_refuses_a_key_id_that_would_break_the_header() -> None:
    with pytest.raises(ValueError):
        sign_request("GET", INBOX, {}, None, 'k",headers="date', KEYS.private_pem)


def test_signing_parses_a_pem_key_once() -> None:
    sign_request("GET", INBOX, {}, None, "k", KEYS.private_pem)
    misses = load_rsa_private_key.cache_info().misses
    for _ in range(5):
        sign_request("GET", INBOX, {}, None, "k", KEYS.private_pem)
    assert load_rsa_private_key.cache_info().misses == misses


def test_signing_costs_little_more_than_the_rsa_operation() -> None:
    key = load_rsa_private_key(KEYS.private_pem)
    rounds = 100
    started = time.perf_counter()
    for _ in range(rounds):
        key.sign(b"x" * 200, padding.PKCS1v15(), hashes.SHA256())
    raw = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        sign_request("POST", INBOX, {}, b"{}" * 500, "k", KEYS.private_pem)
    ours = (time.perf_counter() - started) / rounds
    # Generous bound for a shared machine: framing must not dominate the RSA cost.
    assert ours < raw * 2 + 0.0005, (raw, ours)


# --- parsing --------------------------------------------------------------------------------


def test_parser_reads_authorization_signature_scheme() -> None:
    fields = collect_header_fields({"Authorization": "Signature " + CAVAGE_BASIC_SIGNATURE})
    raw = signature_field(fields)
    assert raw is not None
    assert parse_signature_header(raw).key_id == "Test"


def test_parser_ignores_unknown_parameters_and_tolerates_spaces() -> None:
    signature = parse_signature_header(
        ' keyId="k" , algorithm="hs2019", extra="x", created=1402170695, '
        'headers="(created) host", signature="AAAA" '
    )
    assert signature == CavageSignature(
        key_id="k",
        algorithm="hs2019",
        headers=("(created)", "host"),
        signature=b"\0\0\0",
        created=1402170695,
    )


def test_parser_defaults_the_covered_list_to_date() -> None:
    assert parse_signature_header('keyId="k",signature="AAAA"').headers == ("date",)


def test_parser_accepts_fractional_expires() -> None:
    assert parse_signature_header('keyId="k",signature="AAAA",expires=1402170699.5').expires == (
        1402170699
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "keyId",
        'keyId="k"',
        'signature="AAAA"',
        'keyId="k",signature="not base64"',
        'keyId="k",signature=""',
        'keyId="k",keyId="j",signature="AAAA"',
        'keyId="k" signature="AAAA"',
        'keyId="k,signature="AAAA"',
        'keyId="k",signature="AAAA",created=soon',
        'keyId="k",signature="AAAA",headers=""',
        'keyId="k",signature="AAAA",headers="date date"',
        'keyId="k",signature="AAAA",' + "x" * 9000,
    ],
)
def test_parser_refuses_malformed_fields(value: str) -> None:
    with pytest.raises(SignatureMalformed):
        parse_signature_header(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parser_raises_only_typed_errors_on_arbitrary_text(value: str) -> None:
    try:
        parse_signature_header(value)
    except SignatureError:
        pass


_PARAMETER = st.tuples(
    st.sampled_from(["keyId", "algorithm", "headers", "signature", "created", "expires", "x"]),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PARAMETER, max_size=8), st.sampled_from(["GET", "POST"]))
def test_parse_and_verify_raise_only_typed_errors_on_plausible_fields(
    parameters: list[tuple[str, str, bool]], method: str
) -> None:
    value = ",".join(
        f'{name}="{text}"' if quoted else f"{name}={text}" for name, text, quoted in parameters
    )
    try:
        signature = parse_signature_header(value)
        verify_request_signature(
            signature,
            method=method,
            url=INBOX,
            headers={"Host": "relay.example", "Date": format_http_date(NOW), "Digest": "x"},
            public_key=load_public_key(KEYS.public_pem),
            now=NOW,
        )
    except SignatureError:
        pass


# --- verification rules ---------------------------------------------------------------------


def test_rsa_sha256_signature_cannot_use_the_created_pseudo_header() -> None:
    signature = CavageSignature("k", "rsa-sha256", ("(created)",), b"x", created=1)
    with pytest.raises(SignatureMalformed):
        build_signing_string(signature, method="GET", target="/", fields={})


def test_hs2019_with_an_ed25519_key_verifies() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    fields = collect_header_fields({"Host": "relay.example"})
    signature = CavageSignature(
        "k", "hs2019", ("(request-target)", "host", "(created)"), b"", created=int(NOW)
    )
    signing_string = build_signing_string(signature, method="GET", target="/inbox", fields=fields)
    signed = CavageSignature(
        "k", "hs2019", signature.headers, private.sign(signing_string), created=int(NOW)
    )
    assert verify_signature_bytes(signed, signing_string, private.public_key()) == "ed25519"


def test_rsa_sha256_signature_is_refused_with_an_ed25519_key() -> None:
    signature = CavageSignature("k", "rsa-sha256", ("date",), b"x")
    with pytest.raises(KeyUnusable):
        verify_signature_bytes(
            signature, b"date: x", ed25519.Ed25519PrivateKey.generate().public_key()
        )


def test_unknown_algorithm_is_unsupported() -> None:
    signature = CavageSignature("k", "hmac-sha256", ("date",), b"x")
    with pytest.raises(SignatureUnsupported):
        verify_signature_bytes(signature, b"date: x", load_public_key(KEYS.public_pem))


def test_tampered_signature_is_invalid() -> None:
    signature = CavageSignature("k", "rsa-sha256", ("date",), b"\0" * 256)
    with pytest.raises(SignatureInvalid):
        verify_signature_bytes(signature, b"date: x", load_public_key(KEYS.public_pem))


def test_http_date_round_trips() -> None:
    assert parse_http_date(format_http_date(CAVAGE_REQUEST_TIME)) == CAVAGE_REQUEST_TIME
    assert format_http_date(CAVAGE_REQUEST_TIME) == "Sun, 05 Jan 2014 21:31:40 GMT"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "Sun, 05 Jan 2014 21:31:40 UTC",
        "Sun, 32 Jan 2014 21:31:40 GMT",
        "Sunday, 05-Jan-14 21:31:40 GMT",
        "Sun, 05 Jan 2014 25:31:40 GMT",
        "Sun, ٠٥ Jan 2014 21:31:40 GMT",
    ],
)
def test_http_date_parser_refuses_anything_but_imf_fixdate(value: str) -> None:
    with pytest.raises(SignatureMalformed):
        parse_http_date(value)


def test_stale_signature_raises_stale() -> None:
    headers = sign_request("GET", INBOX, {}, None, "k", KEYS.private_pem, now=NOW - 3601)
    with pytest.raises(SignatureStale):
        _verify_own("GET", INBOX, {"Host": "relay.example", **headers})


_PARAMETER_ALPHABET = st.sampled_from(list('aZ09_-=", \t\\\nk'))


@given(st.text(_PARAMETER_ALPHABET, max_size=40))
@settings(max_examples=400, deadline=None)
def test_fast_parameter_reading_agrees_with_the_character_parser(value: str) -> None:
    def outcome(parse: Callable[[str], dict[str, str]]) -> object:
        try:
            return parse(value)
        except SignatureMalformed as error:
            return ("malformed", str(error))

    assert outcome(_parse_parameters) == outcome(_parse_parameters_by_character)


def test_raw_header_lines_are_grouped_like_decoded_ones() -> None:
    raw = [(b"Host", b"relay.test"), (b"x-a", b"1"), (b"X-A", b"2\xe9")]
    decoded = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    assert collect_raw_header_fields(raw) == collect_header_fields(decoded)
