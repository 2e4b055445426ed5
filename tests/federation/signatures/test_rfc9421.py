import base64
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.signatures.digest import content_digest_header
from federation.signatures.errors import (
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
from federation.signatures.keys import generate_ed25519_key_pair, generate_rsa_key_pair
from federation.signatures.public_keys import load_public_key
from federation.signatures.rfc9421 import (
    MessageSignature,
    build_signature_base,
    check_coverage,
    parse_message_signatures,
    select_signature,
    sign_message,
    verify_message_signature,
    verify_signature_bytes,
)
from federation.signatures.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_inner_list,
    serialize_item,
)
from federation.signatures.verification import verify_signed_request
from tests.federation.signatures.signature_test_vectors import (
    RFC9421_B21_INPUT,
    RFC9421_B21_SIGNATURE,
    RFC9421_B23_BASE,
    RFC9421_B23_INPUT,
    RFC9421_B23_SIGNATURE,
    RFC9421_B26_BASE,
    RFC9421_B26_INPUT,
    RFC9421_B26_SIGNATURE,
    RFC9421_CREATED,
    RFC9421_ED25519_PRIVATE_KEY,
    RFC9421_ED25519_PUBLIC_KEY,
    RFC9421_REQUEST_BODY,
    RFC9421_REQUEST_HEADERS,
    RFC9421_REQUEST_URL,
    RFC9421_RSA_PSS_PUBLIC_KEY,
)

RSA = generate_rsa_key_pair()
ED = generate_ed25519_key_pair()
INBOX = "https://relay.example/inbox"
NOW = 1_700_000_000.0


def _vector_request(signature_input: str, signature: str) -> dict[str, str]:
    return {**RFC9421_REQUEST_HEADERS, "Signature-Input": signature_input, "Signature": signature}


def _vector(signature_input: str, signature: str) -> tuple[MessageSignature, bytes]:
    fields = collect_header_fields(_vector_request(signature_input, signature))
    (parsed,) = parse_message_signatures(fields)
    base = build_signature_base(
        parsed.covered, method="POST", url=RFC9421_REQUEST_URL, fields=fields
    )
    return parsed, base


# --- RFC 9421 Appendix B --------------------------------------------------------------------


def test_b26_signature_base_is_the_one_printed_in_the_rfc() -> None:
    _, base = _vector(RFC9421_B26_INPUT, RFC9421_B26_SIGNATURE)
    assert base.decode() == RFC9421_B26_BASE


def test_b26_ed25519_signature_verifies_with_the_rfc_key() -> None:
    parsed, base = _vector(RFC9421_B26_INPUT, RFC9421_B26_SIGNATURE)
    assert (
        verify_signature_bytes(parsed, base, load_public_key(RFC9421_ED25519_PUBLIC_KEY))
        == "ed25519"
    )


def test_b26_signing_with_the_rfc_key_reproduces_the_rfc_signature() -> None:
    key = serialization.load_pem_private_key(RFC9421_ED25519_PRIVATE_KEY.encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    _, base = _vector(RFC9421_B26_INPUT, RFC9421_B26_SIGNATURE)
    assert f"sig-b26=:{base64.b64encode(key.sign(base)).decode()}:" == RFC9421_B26_SIGNATURE


def test_b26_is_refused_for_a_post_because_the_body_is_not_covered() -> None:
    parsed, _ = _vector(RFC9421_B26_INPUT, RFC9421_B26_SIGNATURE)
    with pytest.raises(SignatureCoverageInsufficient, match="content-digest"):
        check_coverage(parsed, method="POST")


def test_b23_signature_base_is_the_one_printed_in_the_rfc() -> None:
    _, base = _vector(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE)
    assert base.decode() == RFC9421_B23_BASE


def test_b23_rsa_pss_signature_passes_every_check() -> None:
    parsed, _ = _vector(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE)
    algorithm = verify_message_signature(
        parsed,
        method="POST",
        url=RFC9421_REQUEST_URL,
        headers=_vector_request(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE),
        public_key=load_public_key(RFC9421_RSA_PSS_PUBLIC_KEY),
        now=RFC9421_CREATED + 10,
    )
    assert algorithm == "rsa-pss-sha512"


def test_b23_passes_the_inbox_entry_point_with_the_rfc_body() -> None:
    verified = verify_signed_request(
        "POST",
        RFC9421_REQUEST_URL,
        _vector_request(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE),
        RFC9421_REQUEST_BODY,
        now=RFC9421_CREATED,
        key_lookup=lambda key_id: RFC9421_RSA_PSS_PUBLIC_KEY,
    )
    assert (verified.key_id, verified.scheme) == ("test-key-rsa-pss", "rfc9421")


def test_b23_fails_once_a_covered_header_changes() -> None:
    headers = {**RFC9421_REQUEST_HEADERS, "Content-Length": "19"}
    fields = collect_header_fields(
        {**headers, "Signature-Input": RFC9421_B23_INPUT, "Signature": RFC9421_B23_SIGNATURE}
    )
    (parsed,) = parse_message_signatures(fields)
    base = build_signature_base(
        parsed.covered, method="POST", url=RFC9421_REQUEST_URL, fields=fields
    )
    with pytest.raises(SignatureInvalid):
        verify_signature_bytes(parsed, base, load_public_key(RFC9421_RSA_PSS_PUBLIC_KEY))


def test_b23_is_stale_a_day_later() -> None:
    parsed, _ = _vector(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE)
    with pytest.raises(SignatureStale):
        verify_message_signature(
            parsed,
            method="POST",
            url=RFC9421_REQUEST_URL,
            headers=_vector_request(RFC9421_B23_INPUT, RFC9421_B23_SIGNATURE),
            public_key=load_public_key(RFC9421_RSA_PSS_PUBLIC_KEY),
            now=RFC9421_CREATED + 86400,
        )


def test_b21_minimal_signature_verifies_but_covers_too_little() -> None:
    parsed, base = _vector(RFC9421_B21_INPUT, RFC9421_B21_SIGNATURE)
    assert base == (
        b'"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss"'
        b';nonce="b3k2pp5k7z-50gnwp.yemd"'
    )
    assert verify_signature_bytes(parsed, base, load_public_key(RFC9421_RSA_PSS_PUBLIC_KEY)) == (
        "rsa-pss-sha512"
    )
    with pytest.raises(SignatureCoverageInsufficient):
        check_coverage(parsed, method="GET")


# --- signing --------------------------------------------------------------------------------


def _verify_own(method: str, url: str, headers: dict[str, str], public_pem: str, now: float) -> str:
    fields = collect_header_fields(headers)
    signature = select_signature(parse_message_signatures(fields), method=method)
    return verify_message_signature(
        signature,
        method=method,
        url=url,
        headers=headers,
        public_key=load_public_key(public_pem),
        now=now,
    )


def test_signed_post_covers_method_target_authority_and_digest() -> None:
    body = b'{"type":"Create"}'
    added = sign_message(
        "POST", INBOX, {}, body, "https://relay.example/actor#main-key", RSA.private_pem, now=NOW
    )
    assert added["Content-Digest"] == content_digest_header(body)
    assert added["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "@authority" "content-digest");created=1700000000'
        ';keyid="https://relay.example/actor#main-key";alg="rsa-v1_5-sha256"'
    )
    assert _verify_own("POST", INBOX, added, RSA.public_pem, NOW) == "rsa-v1_5-sha256"


def test_signed_get_has_no_digest() -> None:
    added = sign_message(
        "GET", "https://remote.example:8443/users/a?x=1", {}, None, "k", RSA.private_pem, now=NOW
    )
    assert "Content-Digest" not in added
    assert '"content-digest"' not in added["Signature-Input"]
    assert _verify_own("GET", "https://remote.example:8443/users/a?x=1", added, RSA.public_pem, NOW)


@pytest.mark.parametrize("algorithm", ["rsa-pss-sha512", "ed25519"])
def test_other_algorithms_sign_and_verify(algorithm: str) -> None:
    keys = ED if algorithm == "ed25519" else RSA
    added = sign_message(
        "POST", INBOX, {}, b"{}", "k", keys.private_pem, algorithm=algorithm, now=NOW
    )
    assert _verify_own("POST", INBOX, added, keys.public_pem, NOW) == algorithm


def test_signature_for_another_url_does_not_verify() -> None:
    added = sign_message("POST", INBOX, {}, b"{}", "k", RSA.private_pem, now=NOW)
    with pytest.raises(SignatureInvalid):
        _verify_own("POST", "https://relay.example/users/x/inbox", added, RSA.public_pem, NOW)


def test_signature_declared_ed25519_is_refused_with_an_rsa_key() -> None:
    added = sign_message(
        "POST", INBOX, {}, b"{}", "k", ED.private_pem, algorithm="ed25519", now=NOW
    )
    with pytest.raises(KeyUnusable):
        _verify_own("POST", INBOX, added, RSA.public_pem, NOW)


def test_unsupported_alg_parameter_is_refused() -> None:
    added = sign_message("POST", INBOX, {}, b"{}", "k", RSA.private_pem, now=NOW)
    added["Signature-Input"] = added["Signature-Input"].replace("rsa-v1_5-sha256", "hmac-sha256")
    with pytest.raises(SignatureUnsupported):
        _verify_own("POST", INBOX, added, RSA.public_pem, NOW)


def test_a_weaker_extra_signature_does_not_hide_a_sufficient_one() -> None:
    added = sign_message("POST", INBOX, {}, b"{}", "k", RSA.private_pem, now=NOW)
    added["Signature-Input"] = (
        'proxy=("@authority");created=1;keyid="p", ' + added["Signature-Input"]
    )
    added["Signature"] = "proxy=:AAAA:, " + added["Signature"]
    assert _verify_own("POST", INBOX, added, RSA.public_pem, NOW)


# --- cross-check with the http-message-signatures library ----------------------------------


@dataclass
class _LibraryRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def _resolver(public: object, private: object) -> MappingKeyResolver:
    return MappingKeyResolver(public_keys={"k": public}, private_keys={"k": private})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("algorithm", "library_algorithm"),
    [
        ("rsa-v1_5-sha256", algorithms.RSA_V1_5_SHA256),
        ("rsa-pss-sha512", algorithms.RSA_PSS_SHA512),
        ("ed25519", algorithms.ED25519),
    ],
)
def test_library_verifies_our_signature(algorithm: str, library_algorithm: type) -> None:
    keys = ED if algorithm == "ed25519" else RSA
    body = b'{"type":"Announce"}'
    request = _LibraryRequest("POST", INBOX)
    request.headers.update(
        sign_message("POST", INBOX, {}, body, "k", keys.private_pem, algorithm=algorithm)
    )
    verifier = HTTPMessageVerifier(
        signature_algorithm=library_algorithm,
        key_resolver=_resolver(keys.public_pem.encode(), keys.private_pem.encode()),
    )
    (result,) = verifier.verify(
        request,
        body=body,
        require_components=("@method", "@target-uri", "@authority", "content-digest"),
    )
    assert result.parameters["keyid"] == "k"


@pytest.mark.parametrize(
    ("algorithm", "library_algorithm"),
    [
        ("rsa-v1_5-sha256", algorithms.RSA_V1_5_SHA256),
        ("rsa-pss-sha512", algorithms.RSA_PSS_SHA512),
        ("ed25519", algorithms.ED25519),
    ],
)
def test_we_verify_the_library_signature(algorithm: str, library_algorithm: type) -> None:
    keys = ED if algorithm == "ed25519" else RSA
    body = b'{"type":"Like"}'
    request = _LibraryRequest("POST", "https://relay.example:8443/inbox?x=1")
    signer = HTTPMessageSigner(
        signature_algorithm=library_algorithm,
        key_resolver=_resolver(keys.public_pem.encode(), keys.private_pem.encode()),
    )
    signer.sign(
        request,
        key_id="k",
        covered_component_ids=("@method", "@authority", "@target-uri"),
        body=body,
        label="sig1",
    )
    assert (
        _verify_own(request.method, request.url, request.headers, keys.public_pem, time.time())
        == algorithm
    )


def test_we_refuse_a_library_signature_over_a_tampered_body_digest() -> None:
    request = _LibraryRequest("POST", INBOX)
    HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=_resolver(RSA.public_pem.encode(), RSA.private_pem.encode()),
    ).sign(request, key_id="k", body=b"{}")
    request.headers["Content-Digest"] = content_digest_header(b"[]")
    with pytest.raises(SignatureInvalid):
        _verify_own("POST", INBOX, request.headers, RSA.public_pem, time.time())


def test_a_repeated_signature_label_is_refused_even_if_its_last_input_verifies() -> None:
    added = sign_message("POST", INBOX, {}, b"{}", "k", RSA.private_pem, now=NOW)
    added["Signature-Input"] = (
        'sig1=("@authority");created=1;keyid="other", ' + added["Signature-Input"]
    )
    with pytest.raises(SignatureMalformed, match="duplicate"):
        _verify_own("POST", INBOX, added, RSA.public_pem, NOW)


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature_input", "signature", "error"),
    [
        (None, None, SignatureMissing),
        ('sig1=("@method");keyid="k"', None, SignatureMalformed),
        ('sig1=("@method");keyid="k"', "sig2=:AAAA:", SignatureMalformed),
        ('sig1="@method";keyid="k"', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method")', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method");keyid=k', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method");keyid="k";created=?1', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method");keyid="k";created=-5', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method");keyid="k"', 'sig1="AAAA"', SignatureMalformed),
        ('sig1=("@method");keyid="k"', "sig1=::", SignatureMalformed),
        ('sig1=("@method";keyid="k"', "sig1=:AAAA:", SignatureMalformed),
        ('sig1=("@method");keyid="k", sig1=("@path");keyid="k"', "sig1=:AAAA:", SignatureMalformed),
        ("", "", SignatureMalformed),
    ],
)
def test_parser_refuses_malformed_fields(
    signature_input: str | None, signature: str | None, error: type[SignatureError]
) -> None:
    headers = {}
    if signature_input is not None:
        headers["Signature-Input"] = signature_input
    if signature is not None:
        headers["Signature"] = signature
    with pytest.raises(error):
        parse_message_signatures(collect_header_fields(headers))


@pytest.mark.parametrize(
    ("component", "error"),
    [
        ('"@query-param";name="a"', SignatureUnsupported),
        ('"@status"', SignatureUnsupported),
        ('"content-digest";sf', SignatureUnsupported),
        ('"Content-Type"', SignatureMalformed),
        ('"x-missing"', SignatureMalformed),
        ("token", SignatureMalformed),
        ('"@method" "@method"', SignatureMalformed),
    ],
)
def test_signature_base_refuses_unsupported_or_bad_components(
    component: str, error: type[SignatureError]
) -> None:
    fields = collect_header_fields(
        {"Signature-Input": f'sig1=({component});keyid="k";created=1', "Signature": "sig1=:AAAA:"}
    )
    (parsed,) = parse_message_signatures(fields)
    with pytest.raises(error):
        build_signature_base(parsed.covered, method="POST", url=INBOX, fields=fields)


_SF_TEXT = st.text(alphabet=st.sampled_from('sig1=()";:,@*?-_. abcAZ09+/\\\t'), max_size=120)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_SF_TEXT, st.text(max_size=200)), st.one_of(_SF_TEXT, st.text(max_size=200)))
def test_parsing_and_verifying_raise_only_typed_errors(
    signature_input: str, signature: str
) -> None:
    headers = {"Signature-Input": signature_input, "Signature": signature, "Host": "relay.example"}
    try:
        _verify_own("POST", INBOX, headers, RSA.public_pem, NOW)
    except SignatureError:
        pass


# --- structured fields ----------------------------------------------------------------------


def test_structured_dictionary_parses_every_bare_item_type() -> None:
    parsed = parse_dictionary('a=1, b=-2.5, c="x\\"y", d=tok/en:1, e=:AQI=:, f=?0, g, h=(1 "2");p')
    assert parsed == {
        "a": Item(1),
        "b": Item(Decimal("-2.5")),
        "c": Item('x"y'),
        "d": Item(Token("tok/en:1")),
        "e": Item(b"\x01\x02"),
        "f": Item(False),
        "g": Item(True),
        "h": InnerList((Item(1), Item("2")), {"p": True}),
    }


def test_structured_serialisation_round_trips_a_signature_input() -> None:
    text = '("@method" "@query-param";name="a" "x");created=1;keyid="k\\\\";flag;ratio=0.5'
    member = parse_dictionary(f"s={text}")["s"]
    assert isinstance(member, InnerList)
    assert serialize_inner_list(member) == text


def test_structured_token_serialises_bare_and_string_quoted() -> None:
    assert serialize_item(Item(Token("abc"), {"n": "v"})) == 'abc;n="v"'
    string = parse_dictionary('s="abc"')["s"]
    assert isinstance(string, Item)
    assert serialize_item(string) == '"abc"'


def test_structured_dictionary_refuses_a_repeated_key() -> None:
    with pytest.raises(StructuredFieldError, match="duplicate dictionary key 'a'"):
        parse_dictionary("a=1, b=2, a=3")


def test_structured_parameters_may_repeat_and_the_last_wins() -> None:
    # RFC 9651 section 4.2.3.2; signature parameters are checked by name after parsing.
    assert parse_dictionary("a=1;p=1;p=2") == {"a": Item(1, {"p": 2})}


@pytest.mark.parametrize(
    "value",
    [
        "a=",
        "A=1",
        "a=1,",
        "a=(1",
        'a="unterminated',
        "a=:not base64:",
        "a=1234567890123456",
        "a=1.2345",
        "a=?2",
        'a="\\x"',
        "a=1;",
        "a=é",
        "a=1 b=2",
    ],
)
def test_structured_parser_refuses_malformed_dictionaries(value: str) -> None:
    with pytest.raises(StructuredFieldError):
        parse_dictionary(value)


def test_rsa_key_types_are_distinguished() -> None:
    assert isinstance(load_public_key(RSA.public_pem), rsa.RSAPublicKey)
    assert isinstance(load_public_key(ED.public_pem), ed25519.Ed25519PublicKey)
