"""Authenticating inbound webhooks: Standard Webhooks, Ghost, Forgejo/Gitea and GitHub.

Every check works on the raw body bytes exactly as received and compares MACs in constant
time. Failures raise `WebhookSignatureError` with a reason fit for a 401 answer; no secret
material ever appears in a reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

STANDARD_TOLERANCE_SECONDS = 300
GHOST_TOLERANCE_SECONDS = 300
_STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)


class WebhookSignatureError(Exception):
    """The request is not authentic (or no secret is configured to tell)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def standard_secret_key(secret: str) -> bytes:
    """Key bytes of a Standard Webhooks secret: `whsec_<base64>` decoded, otherwise raw."""
    if secret.startswith(_STANDARD_SECRET_PREFIX):
        encoded = secret[len(_STANDARD_SECRET_PREFIX) :]
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("whsec_ secret is not valid base64") from exc
    return secret.encode()


def sign_standard_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value a Standard Webhooks sender puts on this message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = _hmac_sha256(standard_secret_key(secret), signed)
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhook(
    *,
    secrets: Sequence[str],
    message_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance: int = STANDARD_TOLERANCE_SECONDS,
) -> None:
    """Accept when any `v1` signature in the header matches any configured secret.

    Several secrets allow rotation; several signatures in the header let the sender sign with
    old and new secrets during its own rotation.
    """
    if not secrets:
        raise WebhookSignatureError("no webhook secret is configured for this source")
    if not message_id or not timestamp or not signature_header:
        raise WebhookSignatureError(
            "webhook-id, webhook-timestamp and webhook-signature headers are required"
        )
    sent_at = _integer_timestamp(timestamp)
    if abs(now - sent_at) > tolerance:
        raise WebhookSignatureError("webhook-timestamp is outside the tolerance window")
    presented = _standard_signatures(signature_header)
    if not presented:
        raise WebhookSignatureError("webhook-signature holds no v1 signature")
    signed = f"{message_id}.{timestamp}.".encode() + body
    matched = False
    for secret in secrets:
        try:
            key = standard_secret_key(secret)
        except ValueError:
            continue
        expected = _hmac_sha256(key, signed)
        for candidate in presented:
            # Keep comparing after a match so timing does not reveal which pair matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError("webhook-signature does not match")


def _integer_timestamp(value: str) -> int:
    stripped = value.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 16:
        raise WebhookSignatureError("timestamp is not a number of seconds")
    return int(stripped)


def _standard_signatures(header: str) -> list[bytes]:
    signatures: list[bytes] = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return signatures


def sign_ghost_webhook(secret: str, body: bytes, timestamp_ms: int) -> str:
    """The `X-Ghost-Signature` value Ghost sends: HMAC over the body followed by the timestamp."""
    digest = hmac.new(secret.encode(), body + str(timestamp_ms).encode(), hashlib.sha256)
    return f"sha256={digest.hexdigest()}, t={timestamp_ms}"


def verify_ghost_webhook(
    *,
    secret: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance: int = GHOST_TOLERANCE_SECONDS,
) -> None:
    """Ghost signs `body + str(t)` with HMAC-SHA256, t in milliseconds since the epoch."""
    if not secret:
        raise WebhookSignatureError("no webhook secret is configured for this source")
    if not signature_header:
        raise WebhookSignatureError("X-Ghost-Signature header is required")
    fields: dict[str, str] = {}
    for part in signature_header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name.strip().lower()] = value.strip()
    presented = _hex_bytes(fields.get("sha256", ""))
    timestamp = fields.get("t", "")
    if presented is None or not timestamp:
        raise WebhookSignatureError("X-Ghost-Signature must be `sha256=<hex>, t=<ms>`")
    sent_at_ms = _integer_timestamp(timestamp)
    if abs(now - sent_at_ms / 1000) > tolerance:
        raise WebhookSignatureError("X-Ghost-Signature timestamp is outside the tolerance window")
    expected = _hmac_sha256(secret.encode(), body + timestamp.strip().encode())
    if not hmac.compare_digest(expected, presented):
        raise WebhookSignatureError("X-Ghost-Signature does not match")


def sign_forge_webhook(secret: str, body: bytes) -> str:
    """Forgejo/Gitea `X-Forgejo-Signature`: hex HMAC-SHA256 of the raw body, no prefix."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_forge_webhook(*, secret: str | None, signature_header: str | None, body: bytes) -> None:
    if not secret:
        raise WebhookSignatureError("no webhook secret is configured for this source")
    presented = _hex_bytes((signature_header or "").strip())
    if presented is None:
        raise WebhookSignatureError("X-Forgejo-Signature (or X-Gitea-Signature) is required")
    if not hmac.compare_digest(_hmac_sha256(secret.encode(), body), presented):
        raise WebhookSignatureError("forge signature does not match")


def sign_github_webhook(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github_webhook(*, secret: str | None, signature_header: str | None, body: bytes) -> None:
    if not secret:
        raise WebhookSignatureError("no webhook secret is configured for this source")
    scheme, _, value = (signature_header or "").strip().partition("=")
    presented = _hex_bytes(value) if scheme == "sha256" else None
    if presented is None:
        raise WebhookSignatureError("X-Hub-Signature-256 `sha256=<hex>` header is required")
    if not hmac.compare_digest(_hmac_sha256(secret.encode(), body), presented):
        raise WebhookSignatureError("X-Hub-Signature-256 does not match")


def _hex_bytes(value: str) -> bytes | None:
    if len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
