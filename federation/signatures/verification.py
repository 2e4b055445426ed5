"""One entry point for authenticating a signed inbox request, whichever scheme it uses.

Verification is split in two so the caller can do the key lookup (I/O) in between and
retry it once after a key rotation:

    pending = parse_signature(method, url, headers, body, now=now)   # no key needed
    public_key_pem = ...look up pending.key_id...
    verified = verify_with_key(pending, public_key_pem)              # SignatureInvalid?
                                                                     # re-fetch, try once more

`parse_signature` checks everything that needs no key (body digests against the raw body
first, then structure, coverage and time window), so a request that cannot succeed never
causes a key fetch. `url` is the request's public URL (scheme, host, path and query as the
sender addressed it), which behind a reverse proxy is the base URL plus the path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from federation.signatures import cavage, rfc9421
from federation.signatures.digest import verify_content_digest_header, verify_digest_header
from federation.signatures.errors import (
    DigestMissing,
    SignatureError,
    SignatureMissing,
)
from federation.signatures.header_fields import (
    HeaderFields,
    HeaderInput,
    collect_header_fields,
    combined_field_value,
)
from federation.signatures.public_keys import load_public_key

SignatureScheme = Literal["draft-cavage", "rfc9421"]
DRAFT_CAVAGE: Final = "draft-cavage"
RFC9421: Final = "rfc9421"

__all__ = [
    "PendingSignature",
    "SignatureError",
    "VerifiedRequest",
    "parse_signature",
    "parse_signature_fields",
    "verify_signed_request",
    "verify_with_key",
]


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    key_id: str
    scheme: SignatureScheme
    algorithm: str


@dataclass(frozen=True, slots=True)
class PendingSignature:
    """A request whose signature passed every check that needs no key."""

    key_id: str
    scheme: SignatureScheme
    signed_bytes: bytes
    cavage: cavage.CavageSignature | None = None
    message: rfc9421.MessageSignature | None = None


def parse_signature(
    method: str, url: str, headers: HeaderInput, body: bytes, *, now: float | None = None
) -> PendingSignature:
    return parse_signature_fields(method, url, collect_header_fields(headers), body, now=now)


def parse_signature_fields(
    method: str, url: str, fields: HeaderFields, body: bytes, *, now: float | None = None
) -> PendingSignature:
    """`parse_signature` for header fields already grouped by lower-case name."""
    moment = time.time() if now is None else now
    method = method.upper()
    _check_present_digests(fields, body)
    if "signature-input" in fields:
        return _parse_message_signature(method, url, fields, body, moment)
    raw = cavage.signature_field(fields)
    if raw is None:
        raise SignatureMissing("request is not signed")
    signature = cavage.parse_signature_header(raw)
    cavage.check_coverage(signature, method=method)
    if body and "digest" not in signature.headers:
        raise DigestMissing("the request body is not covered by the signature")
    cavage.check_freshness(signature, fields=fields, now=moment)
    signing_string = cavage.build_signing_string(
        signature,
        method=method,
        target=cavage.request_target(urlsplit(url)),
        fields=fields,
    )
    return PendingSignature(
        key_id=signature.key_id,
        scheme=DRAFT_CAVAGE,
        signed_bytes=signing_string,
        cavage=signature,
    )


def _parse_message_signature(
    method: str, url: str, fields: HeaderFields, body: bytes, now: float
) -> PendingSignature:
    signatures = rfc9421.parse_message_signatures(fields)
    signature = rfc9421.select_signature(signatures, method=method)
    if body and "content-digest" not in signature.component_names:
        raise DigestMissing("the request body is not covered by the signature")
    rfc9421.check_freshness(signature, now=now)
    base = rfc9421.build_signature_base(signature.covered, method=method, url=url, fields=fields)
    return PendingSignature(
        key_id=signature.key_id, scheme=RFC9421, signed_bytes=base, message=signature
    )


def _check_present_digests(fields: HeaderFields, body: bytes) -> None:
    """Every digest the request carries must match the raw body, signed or not: a
    mismatch means the body is not the one that was sent."""
    digest = combined_field_value(fields, "digest")
    if digest is not None:
        verify_digest_header(digest, body)
    content_digest = combined_field_value(fields, "content-digest")
    if content_digest is not None:
        verify_content_digest_header(content_digest, body)


def verify_with_key(pending: PendingSignature, public_key_pem: str) -> VerifiedRequest:
    """The cryptographic check. Raises `SignatureInvalid` when the key does not match, in
    which case a caller may re-fetch the key once and call this again."""
    public_key = load_public_key(public_key_pem)
    if pending.cavage is not None:
        algorithm = cavage.verify_signature_bytes(pending.cavage, pending.signed_bytes, public_key)
    elif pending.message is not None:
        algorithm = rfc9421.verify_signature_bytes(
            pending.message, pending.signed_bytes, public_key
        )
    else:
        raise SignatureMissing("no parsed signature to verify")
    return VerifiedRequest(key_id=pending.key_id, scheme=pending.scheme, algorithm=algorithm)


def verify_signed_request(
    method: str,
    url: str,
    headers: HeaderInput,
    body: bytes,
    *,
    now: float | None = None,
    key_lookup: Callable[[str], str],
) -> VerifiedRequest:
    """Both steps with a synchronous key lookup (keyId -> public key PEM)."""
    pending = parse_signature(method, url, headers, body, now=now)
    return verify_with_key(pending, key_lookup(pending.key_id))
