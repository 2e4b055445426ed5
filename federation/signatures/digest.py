"""Body digests: the legacy `Digest` field (RFC 3230, as Mastodon sends it) and RFC 9530
`Content-Digest`. Both are computed over the raw body bytes exactly as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from federation.signatures.errors import DigestMalformed, DigestMismatch
from federation.signatures.structured_fields import Item, StructuredFieldError, parse_dictionary

# Field algorithm name -> hashlib name. Names are case-insensitive in RFC 3230 (so the
# legacy lookup lower-cases them) and lower-case in RFC 9530.
_HASHLIB_NAMES: Final = {"sha-256": "sha256", "sha-512": "sha512"}
_MAX_DIGEST_FIELD = 4096


def digest_header(body: bytes) -> str:
    """`Digest` field value: `SHA-256=<base64>`."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """`Content-Digest` field value: `sha-256=:<base64>:`."""
    encoded = base64.b64encode(_digest(algorithm, body)).decode("ascii")
    return f"{algorithm}=:{encoded}:"


def _digest(algorithm: str, body: bytes) -> bytes:
    return hashlib.new(_HASHLIB_NAMES[algorithm], body).digest()


def verify_digest_header(value: str, body: bytes) -> None:
    """Check a `Digest` field against the body.

    Every member with an algorithm we know must match and at least one must be known;
    members with other algorithms (MD5, SHA, UNIXsum...) are ignored rather than trusted.
    """
    if len(value) > _MAX_DIGEST_FIELD:
        raise DigestMalformed("Digest field too long")
    checked = 0
    for member in value.split(","):
        name, separator, encoded = member.strip().partition("=")
        if not separator or not name:
            raise DigestMalformed("Digest member is not algorithm=value")
        algorithm = name.strip().lower()
        if algorithm not in _HASHLIB_NAMES:
            continue
        try:
            expected = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as error:
            raise DigestMalformed("Digest value is not base64") from error
        if not hmac.compare_digest(expected, _digest(algorithm, body)):
            raise DigestMismatch("Digest does not match the body")
        checked += 1
    if checked == 0:
        raise DigestMalformed("Digest uses no supported algorithm (SHA-256 or SHA-512)")


def verify_content_digest_header(value: str, body: bytes) -> None:
    """Check a `Content-Digest` field against the body, with the same rules as `Digest`."""
    try:
        members = parse_dictionary(value)
    except StructuredFieldError as error:
        raise DigestMalformed(f"Content-Digest is not a structured dictionary: {error}") from error
    checked = 0
    for name, member in members.items():
        if name not in _HASHLIB_NAMES:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestMalformed("Content-Digest member is not a byte sequence")
        if not hmac.compare_digest(member.value, _digest(name, body)):
            raise DigestMismatch("Content-Digest does not match the body")
        checked += 1
    if checked == 0:
        raise DigestMalformed("Content-Digest uses no supported algorithm (sha-256 or sha-512)")
