"""HTTP Signatures as the fediverse uses them: draft-cavage-http-signatures-12.

Signing always uses `rsa-sha256` over `(request-target) host date` plus `digest` when
there is a body. Verification accepts `rsa-sha256` and `hs2019` (whose real algorithm is
taken from the key: RSA PKCS#1 v1.5 with SHA-256, or Ed25519) and enforces what must be
covered for the request to mean anything.

Kept because the Python libraries for the draft (`httpsig`, last released 2018, and its
forks, all on pycryptodome) are slower and check less: python-httpsig-socialhome 1.6.0
takes ~655 against our ~38 us per verified inbox POST and checks neither the body digest
nor the Date window (bench/signature_verification_cost.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import SplitResult, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from federation.signatures.digest import digest_header
from federation.signatures.errors import (
    KeyUnusable,
    SignatureCoverageInsufficient,
    SignatureInvalid,
    SignatureMalformed,
    SignatureUnsupported,
)
from federation.signatures.header_fields import (
    HeaderFields,
    HeaderInput,
    collect_header_fields,
    combined_field_value,
)
from federation.signatures.keys import load_rsa_private_key
from federation.signatures.public_keys import VerificationKey
from federation.signatures.time_window import check_time_window, format_http_date, parse_http_date

RSA_SHA256: Final = "rsa-sha256"
HS2019: Final = "hs2019"
ED25519: Final = "ed25519"

REQUEST_TARGET: Final = "(request-target)"
CREATED: Final = "(created)"
EXPIRES: Final = "(expires)"

MAX_SIGNATURE_FIELD_LENGTH: Final = 8192
_MAX_COVERED_NAMES: Final = 64
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()
_PARAMETER_NAME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
)
# One `name="value"` or `name=value` pair without escapes, and a whole field of them
# separated by commas with optional spaces or tabs: the grammar of
# `_parse_parameters_by_character`, restricted to fields without a backslash.
_SIMPLE_PAIR: Final = r'([A-Za-z0-9_-]+)=(?:"([^"\\]*)"|([^", \t\\]*))'
_SIMPLE_PARAMETER: Final = re.compile(_SIMPLE_PAIR)
_SIMPLE_PARAMETER_LIST: Final = re.compile(
    rf"[ \t]*{_SIMPLE_PAIR}(?:[ \t]*,[ \t]*{_SIMPLE_PAIR})*[ \t]*"
)


@dataclass(frozen=True, slots=True)
class CavageSignature:
    """A parsed `Signature` field. `headers` is the covered list in signing order."""

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


# --- signing -------------------------------------------------------------------------------


def sign_request(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    key_id: str,
    private_key: rsa.RSAPrivateKey | str,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """Sign an outgoing request; return the header fields to add (`Signature`, and `Date`
    and `Digest` unless the caller already set them).

    A POST always carries a digest (of the empty body if there is none). `private_key`
    may be a PEM string; parsing is cached, so passing the same account's PEM on every
    delivery costs nothing after the first.
    """
    if '"' in key_id or "\\" in key_id or "\n" in key_id:
        raise ValueError("key id cannot be placed in a quoted string")
    key = load_rsa_private_key(private_key) if isinstance(private_key, str) else private_key
    existing = {name.lower(): value for name, value in headers.items()}
    parts = urlsplit(url)
    added: dict[str, str] = {}

    date = existing.get("date")
    if date is None:
        date = format_http_date(time.time() if now is None else now)
        added["Date"] = date
    host = existing.get("host") or host_header_value(parts)
    lowered_method = method.lower()
    lines = [
        f"{REQUEST_TARGET}: {lowered_method} {request_target(parts)}",
        f"host: {host}",
        f"date: {date}",
    ]
    covered = "(request-target) host date"
    if body is not None or lowered_method == "post":
        digest = existing.get("digest")
        if digest is None:
            digest = digest_header(body or b"")
            added["Digest"] = digest
        lines.append(f"digest: {digest}")
        covered += " digest"

    signature = key.sign("\n".join(lines).encode("utf-8"), _PKCS1V15, _SHA256)
    encoded = base64.b64encode(signature).decode("ascii")
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{RSA_SHA256}",headers="{covered}",signature="{encoded}"'
    )
    return added


def host_header_value(parts: SplitResult) -> str:
    """The `Host` an HTTP client sends for this URL: lower-case, port only if not default."""
    hostname = parts.hostname
    if not hostname:
        raise ValueError("URL has no host")
    if not hostname.isascii():
        hostname = hostname.encode("idna").decode("ascii")
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        return f"{hostname}:{port}"
    return hostname


def request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


# --- parsing -------------------------------------------------------------------------------


def signature_field(fields: HeaderFields) -> str | None:
    """The signature parameters from `Signature`, or from `Authorization: Signature ...`."""
    signature = combined_field_value(fields, "signature")
    if signature is not None:
        return signature
    authorization = combined_field_value(fields, "authorization")
    if authorization is not None:
        scheme, _, parameters = authorization.strip().partition(" ")
        if scheme.lower() == "signature":
            return parameters
    return None


def parse_signature_header(value: str) -> CavageSignature:
    """Parse `keyId="...",algorithm="...",headers="...",signature="..."`.

    Unknown parameters are ignored, as the draft requires; anything structurally wrong
    raises `SignatureMalformed`.
    """
    params = _parse_parameters(value)
    key_id = params.get("keyId")
    if not key_id:
        raise SignatureMalformed("signature has no keyId")
    encoded = params.get("signature")
    if not encoded:
        raise SignatureMalformed("signature has no signature value")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise SignatureMalformed("signature value is not base64") from error
    if not signature:
        raise SignatureMalformed("signature value is empty")

    created = _parse_timestamp(params.get("created"), "created")
    expires = _parse_timestamp(params.get("expires"), "expires")
    covered_value = params.get("headers")
    if covered_value is None:
        # The draft's default: (created) for hs2019-style signatures, date for the rest.
        covered: tuple[str, ...] = (CREATED,) if created is not None else ("date",)
    else:
        covered = tuple(covered_value.lower().split())
        if not covered:
            raise SignatureMalformed("signature covers no headers")
        if len(covered) > _MAX_COVERED_NAMES or len(set(covered)) != len(covered):
            raise SignatureMalformed("signature header list is too long or repeats a name")
    algorithm = params.get("algorithm")
    return CavageSignature(
        key_id=key_id,
        algorithm=algorithm.lower() if algorithm is not None else None,
        headers=covered,
        signature=signature,
        created=created,
        expires=expires,
    )


def _parse_parameters(value: str) -> dict[str, str]:
    if not isinstance(value, str):
        raise SignatureMalformed("signature field is not text")
    if len(value) > MAX_SIGNATURE_FIELD_LENGTH:
        raise SignatureMalformed("signature field is too long")
    if "\\" not in value and _SIMPLE_PARAMETER_LIST.fullmatch(value):
        # Nearly every sender writes plain `name="value"` pairs without escapes; one
        # regular-expression pass reads those far faster than the character loop below,
        # which stays the authority for everything else, errors included.
        params = {}
        for name, quoted, bare in _SIMPLE_PARAMETER.findall(value):
            if name in params:
                raise SignatureMalformed(f"signature parameter {name!r} is repeated")
            params[name] = quoted or bare
        return params
    return _parse_parameters_by_character(value)


def _parse_parameters_by_character(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position, length = 0, len(value)
    while True:
        while position < length and value[position] in " \t":
            position += 1
        start = position
        while position < length and value[position] in _PARAMETER_NAME_CHARS:
            position += 1
        name = value[start:position]
        if not name or position >= length or value[position] != "=":
            raise SignatureMalformed("signature parameter is not name=value")
        position += 1
        if position < length and value[position] == '"':
            position += 1
            chars: list[str] = []
            while True:
                if position >= length:
                    raise SignatureMalformed("unterminated quoted string in signature")
                char = value[position]
                position += 1
                if char == '"':
                    break
                if char == "\\" and position < length:
                    char = value[position]
                    position += 1
                chars.append(char)
            parameter = "".join(chars)
        else:
            start = position
            while position < length and value[position] not in ", \t":
                position += 1
            parameter = value[start:position]
            if '"' in parameter or "\\" in parameter:
                raise SignatureMalformed("unquoted signature parameter contains a quote")
        if name in params:
            raise SignatureMalformed(f"signature parameter {name!r} is repeated")
        params[name] = parameter
        while position < length and value[position] in " \t":
            position += 1
        if position >= length:
            return params
        if value[position] != ",":
            raise SignatureMalformed("signature parameters must be separated by commas")
        position += 1


def _parse_timestamp(value: str | None, name: str) -> int | None:
    """`created`/`expires` are Unix times; the draft allows a fractional part, dropped here."""
    if value is None:
        return None
    whole, _, fraction = value.partition(".")
    if (
        not whole.isascii()
        or not whole.isdigit()
        or len(whole) > 12
        or (fraction and not (fraction.isascii() and fraction.isdigit()))
    ):
        raise SignatureMalformed(f"signature {name} is not a Unix timestamp")
    return int(whole)


# --- verification --------------------------------------------------------------------------


def build_signing_string(
    signature: CavageSignature, *, method: str, target: str, fields: HeaderFields
) -> bytes:
    """The exact bytes the sender signed, rebuilt from the received request.

    `target` is the request-target as received (path plus query string).
    """
    lines = []
    for name in signature.headers:
        if name == REQUEST_TARGET:
            value = f"{method.lower()} {target}"
        elif name == CREATED:
            _require_pseudo_header_algorithm(signature, name)
            if signature.created is None:
                raise SignatureMalformed("(created) is covered but no created parameter is given")
            value = str(signature.created)
        elif name == EXPIRES:
            _require_pseudo_header_algorithm(signature, name)
            if signature.expires is None:
                raise SignatureMalformed("(expires) is covered but no expires parameter is given")
            value = str(signature.expires)
        else:
            field_value = combined_field_value(fields, name)
            if field_value is None:
                raise SignatureMalformed(f"covered header {name!r} is missing from the request")
            value = field_value
        lines.append(f"{name}: {value}")
    signing_string = "\n".join(lines)
    if not signing_string.isascii() or "\r" in signing_string:
        raise SignatureMalformed("covered values must be ASCII")
    return signing_string.encode("ascii")


def _require_pseudo_header_algorithm(signature: CavageSignature, name: str) -> None:
    # The draft forbids the pseudo-headers with algorithms that name their own hash.
    if signature.algorithm not in (None, HS2019):
        raise SignatureMalformed(f"{name} may only be covered by an hs2019 signature")


def verify_signature_bytes(
    signature: CavageSignature, signing_string: bytes, public_key: VerificationKey
) -> str:
    """Check the signature cryptographically; return the algorithm actually used."""
    algorithm = signature.algorithm
    if algorithm not in (None, RSA_SHA256, HS2019):
        raise SignatureUnsupported(f"signature algorithm {algorithm!r} is not supported")
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature.signature, signing_string, _PKCS1V15, _SHA256)
            return RSA_SHA256
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            if algorithm == RSA_SHA256:
                raise KeyUnusable("an rsa-sha256 signature cannot be checked with an Ed25519 key")
            public_key.verify(signature.signature, signing_string)
            return ED25519
    except InvalidSignature as error:
        raise SignatureInvalid("signature does not match the request") from error
    raise KeyUnusable("unsupported public key type")


def check_coverage(signature: CavageSignature, *, method: str) -> None:
    """Refuse signatures that leave the parts of the request that matter unprotected.

    Every request must cover where it goes (`(request-target)`, `host`) and when it was
    made (`date` or `(created)`); a POST must also cover its body through `digest`.
    """
    covered = set(signature.headers)
    missing = [name for name in (REQUEST_TARGET, "host") if name not in covered]
    if "date" not in covered and CREATED not in covered:
        missing.append("date")
    if method.upper() == "POST" and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise SignatureCoverageInsufficient(
            "signature must cover " + ", ".join(missing) + " for a " + method.upper()
        )


# Concurrent requests mostly carry the same few `Date` values (one per second), so the
# parse is memoised; failures raise and are never cached.
_parse_recent_http_date: Final = lru_cache(maxsize=256)(parse_http_date)


def check_freshness(signature: CavageSignature, *, fields: HeaderFields, now: float) -> None:
    """Apply the time window to the signed creation time (`(created)`, else `Date`)."""
    if CREATED in signature.headers and signature.created is not None:
        created = float(signature.created)
    else:
        date = combined_field_value(fields, "date")
        if date is None:
            raise SignatureMalformed("request has no Date header")
        created = _parse_recent_http_date(date)
    expires = float(signature.expires) if signature.expires is not None else None
    check_time_window(created, expires, now)


def verify_request_signature(
    signature: CavageSignature,
    *,
    method: str,
    url: str,
    headers: HeaderInput,
    public_key: VerificationKey,
    now: float,
) -> str:
    """Coverage, time window and signature in one call (the body digest is checked by the
    caller, see `federation.signatures.verification`). Returns the algorithm used."""
    fields = collect_header_fields(headers)
    check_coverage(signature, method=method)
    check_freshness(signature, fields=fields, now=now)
    signing_string = build_signing_string(
        signature, method=method, target=request_target(urlsplit(url)), fields=fields
    )
    return verify_signature_bytes(signature, signing_string, public_key)
