"""A reference signer and verifier for draft-cavage-http-signatures-12, written from the draft.

The test fleet verifies the relay's signatures with this module and signs its own
activities with it. It deliberately shares no code with ``federation/`` so that a
misreading of the draft in one implementation is caught by the other instead of
cancelling out.

What it implements (section numbers are the draft's):

* 2.1   the ``Signature`` parameters ``keyId``, ``algorithm``, ``headers``,
        ``signature``, ``created`` and ``expires``; ``headers`` defaults to
        ``(created)`` as 2.1.6 says.
* 2.3   the signing string: lowercased names, ``(request-target)``, ``(created)``,
        ``(expires)``, repeated header fields joined with ``", "``, surrounding
        whitespace trimmed.
* 2.5   RSASSA-PKCS1-v1_5 with SHA-256, under the names ``rsa-sha256`` and
        ``hs2019`` (for an RSA key, which is what ``hs2019`` means in practice).
* RFC 3230 ``Digest: SHA-256=<base64>`` for request bodies.

On top of the draft, :class:`VerificationPolicy` states what a receiving server
such as Mastodon insists on: which headers must be covered, how far ``Date`` may
drift, and that a body must be covered by a matching digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SUPPORTED_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
# Algorithms for which 2.3 forbids the (created) and (expires) pseudo-headers.
_LEGACY_ALGORITHM_PREFIXES = ("rsa", "hmac", "ecdsa")
_PARAMETER = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([0-9]+(?:\.[0-9]+)?))\s*(?:,|$)')


class SignatureError(ValueError):
    """A request's signature or digest is missing, malformed or does not verify."""


class SignatureMismatch(SignatureError):
    """Everything is well-formed but the signature is not the key's signature of the request."""


class UnsupportedSignatureScheme(SignatureError):
    """The request is signed with RFC 9421, not draft-cavage; a sender may retry with cavage."""


@runtime_checkable
class HeaderPairs(Protocol):
    """Anything whose ``items()`` yields every header field line, repeats included."""

    def items(self) -> Iterable[tuple[str, str]]: ...


# A mapping or multidict, or a plain sequence of (name, value) field lines.
Headers = HeaderPairs | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SignatureParameters:
    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """What a receiving server demands beyond a mathematically valid signature."""

    required_headers: tuple[str, ...] = ("(request-target)", "host")
    require_date_or_created: bool = True
    require_digest_for_body: bool = True
    max_clock_skew_seconds: float = 3600.0


MASTODON_LIKE_POLICY = VerificationPolicy()
# The draft itself demands nothing beyond the signature; used to check its own examples.
DRAFT_ONLY_POLICY = VerificationPolicy(
    required_headers=(),
    require_date_or_created=False,
    require_digest_for_body=False,
    max_clock_skew_seconds=float("inf"),
)


def parse_signature_header(value: str) -> SignatureParameters:
    """Parse a ``Signature`` header (or the part of ``Authorization`` after ``Signature``)."""
    params: dict[str, str] = {}
    position = 0
    value = value.strip()
    while position < len(value):
        match = _PARAMETER.match(value, position)
        if match is None or match.end() == position:
            raise SignatureError(f"malformed Signature header near offset {position}")
        name = match.group(1)
        if name in params:
            raise SignatureError(f"Signature parameter {name!r} appears twice")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        position = match.end()
    for required in ("keyId", "signature"):
        if not params.get(required):
            raise SignatureError(f"Signature header lacks {required}")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError as error:
        raise SignatureError("signature is not valid base64") from error
    covered = tuple(params.get("headers", "(created)").lower().split())
    if not covered:
        raise SignatureError("headers parameter is empty")
    return SignatureParameters(
        key_id=params["keyId"],
        algorithm=params.get("algorithm"),
        headers=covered,
        signature=signature,
        created=_integer_parameter(params, "created"),
        expires=_integer_parameter(params, "expires"),
    )


def _integer_parameter(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError as error:
        raise SignatureError(f"{name} must be an integer Unix time") from error


def header_values(headers: Headers) -> dict[str, list[str]]:
    """Group header field lines by lowercased name, keeping their order."""
    grouped: dict[str, list[str]] = {}
    lines = headers.items() if isinstance(headers, HeaderPairs) else headers
    for name, value in lines:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def build_signing_string(
    *,
    method: str,
    request_target: str,
    headers: Headers,
    covered: Iterable[str],
    algorithm: str | None = None,
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """Build the string that is signed (draft section 2.3)."""
    grouped = header_values(headers)
    legacy = algorithm is not None and algorithm.lower().startswith(_LEGACY_ALGORITHM_PREFIXES)
    lines = []
    for name in covered:
        name = name.lower()
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {request_target}")
        elif name in ("(created)", "(expires)"):
            number = created if name == "(created)" else expires
            if legacy:
                raise SignatureError(f"{name} is not allowed with algorithm {algorithm}")
            if number is None:
                raise SignatureError(f"{name} is covered but its parameter is absent")
            lines.append(f"{name}: {number}")
        else:
            values = grouped.get(name)
            if values is None:
                raise SignatureError(f"covered header {name!r} is missing from the request")
            lines.append(f"{name}: {', '.join(value.strip() for value in values)}")
    return "\n".join(lines)


def body_digest(body: bytes) -> str:
    """The ``Digest`` header value for a body (RFC 3230, SHA-256)."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def check_digest(header_value: str, body: bytes) -> None:
    """Raise unless the ``Digest`` header carries a SHA-256 entry matching the body."""
    expected = hashlib.sha256(body).digest()
    for entry in header_value.split(","):
        algorithm, _, encoded = entry.strip().partition("=")
        if algorithm.strip().lower() != "sha-256":
            continue
        try:
            claimed = base64.b64decode(encoded.strip(), validate=True)
        except ValueError as error:
            raise SignatureError("Digest SHA-256 value is not valid base64") from error
        if hmac.compare_digest(claimed, expected):
            return
        raise SignatureError("Digest does not match the body")
    raise SignatureError("Digest header has no SHA-256 entry")


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise SignatureError("public key PEM cannot be parsed") from error
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("public key is not an RSA key")
    return key


def request_target_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def sign_request(
    *,
    method: str,
    url: str,
    private_key: rsa.RSAPrivateKey,
    key_id: str,
    body: bytes | None = None,
    extra_headers: Mapping[str, str] | None = None,
    covered: Iterable[str] | None = None,
    algorithm: str = "rsa-sha256",
    now: datetime | None = None,
) -> dict[str, str]:
    """Return the headers to send: ``Host``, ``Date``, ``Digest`` (with a body), ``Signature``.

    By default POSTs cover ``(request-target) host date digest`` and GETs
    ``(request-target) host date``, as Mastodon signs them.
    """
    moment = now or datetime.now(UTC)
    headers: dict[str, str] = {"Host": host_of(url), "Date": http_date(moment)}
    if body is not None:
        headers["Digest"] = body_digest(body)
    headers.update(extra_headers or {})
    if covered is None:
        covered = ["(request-target)", "host", "date"] + (["digest"] if body is not None else [])
    covered = [name.lower() for name in covered]
    created = int(moment.timestamp()) if "(created)" in covered else None
    signing_string = build_signing_string(
        method=method,
        request_target=request_target_of(url),
        headers=headers,
        covered=covered,
        algorithm=algorithm,
        created=created,
    )
    signature = private_key.sign(
        signing_string.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    parameters = [
        f'keyId="{key_id}"',
        f'algorithm="{algorithm}"',
        f'headers="{" ".join(covered)}"',
        f'signature="{base64.b64encode(signature).decode("ascii")}"',
    ]
    if created is not None:
        parameters.insert(2, f"created={created}")
    headers["Signature"] = ",".join(parameters)
    return headers


def signature_parameters_of(headers: Headers) -> SignatureParameters:
    """Find and parse the request's signature (``Signature``, else ``Authorization``)."""
    grouped = header_values(headers)
    if "signature-input" in grouped:
        # RFC 9421 reuses the Signature header name with another syntax.
        raise UnsupportedSignatureScheme("RFC 9421 signature; only draft-cavage is accepted")
    if "signature" in grouped:
        if len(grouped["signature"]) > 1:
            raise SignatureError("more than one Signature header")
        return parse_signature_header(grouped["signature"][0])
    for value in grouped.get("authorization", []):
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() == "signature":
            return parse_signature_header(rest)
    raise SignatureError("request is not signed")


def verify_request(
    *,
    method: str,
    request_target: str,
    headers: Headers,
    body: bytes,
    public_key: rsa.RSAPublicKey,
    now: datetime,
    policy: VerificationPolicy = MASTODON_LIKE_POLICY,
    parameters: SignatureParameters | None = None,
) -> SignatureParameters:
    """Verify a request's signature, its freshness and its body digest; raise SignatureError."""
    params = parameters or signature_parameters_of(headers)
    algorithm = (params.algorithm or "hs2019").lower()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise SignatureError(f"unsupported algorithm {params.algorithm!r}")
    for name in policy.required_headers:
        if name not in params.headers:
            raise SignatureError(f"signature does not cover {name}")
    grouped = header_values(headers)
    _check_freshness(params, grouped, now, policy)
    if policy.require_digest_for_body and (body or method.upper() == "POST"):
        if "digest" not in params.headers:
            raise SignatureError("signature does not cover digest")
    if "digest" in grouped:
        check_digest(", ".join(grouped["digest"]), body)
    signing_string = build_signing_string(
        method=method,
        request_target=request_target,
        headers=headers,
        covered=params.headers,
        algorithm=params.algorithm,
        created=params.created,
        expires=params.expires,
    )
    try:
        public_key.verify(
            params.signature, signing_string.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature as error:
        raise SignatureMismatch("signature does not verify") from error
    return params


def _check_freshness(
    params: SignatureParameters,
    grouped: Mapping[str, list[str]],
    now: datetime,
    policy: VerificationPolicy,
) -> None:
    skew = policy.max_clock_skew_seconds
    timestamp = now.timestamp()
    if params.expires is not None and timestamp > params.expires:
        raise SignatureError("signature has expired")
    if params.created is not None and params.created > timestamp + skew:
        raise SignatureError("signature was created in the future")
    covers_date = "date" in params.headers
    covers_created = "(created)" in params.headers
    if policy.require_date_or_created and not (covers_date or covers_created):
        raise SignatureError("signature covers neither date nor (created)")
    if covers_created and params.created is not None and abs(timestamp - params.created) > skew:
        raise SignatureError("(created) is outside the allowed clock skew")
    if covers_date:
        raw = grouped.get("date")
        if not raw:
            raise SignatureError("covered header 'date' is missing from the request")
        try:
            sent = parsedate_to_datetime(raw[-1])
        except (TypeError, ValueError) as error:
            raise SignatureError("Date header cannot be parsed") from error
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        if abs(timestamp - sent.timestamp()) > skew:
            raise SignatureError("Date is outside the allowed clock skew")
