"""Webhook authentication schemes, checked against independently computed MACs."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from federation.sources.webhook_signatures import (
    WebhookSignatureError,
    sign_standard_webhook,
    standard_secret_key,
    verify_forge_webhook,
    verify_ghost_webhook,
    verify_github_webhook,
    verify_standard_webhook,
)

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"event":"published","source_id":"1"}'
NOW = 1_700_000_000


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard(signature: str, *, secrets=(SECRET,), timestamp=NOW, now=NOW) -> None:
    verify_standard_webhook(
        secrets=list(secrets),
        message_id="msg_1",
        timestamp=str(timestamp),
        signature_header=signature,
        body=BODY,
        now=now,
    )


def test_standard_signature_matches_the_specification():
    assert sign_standard_webhook(SECRET, "msg_1", NOW, BODY) == standard_signature(
        KEY, "msg_1", NOW, BODY
    )


def test_standard_whsec_secret_is_base64_decoded():
    assert standard_secret_key(SECRET) == KEY


def test_standard_raw_secret_is_used_as_bytes():
    assert standard_secret_key("plain-secret") == b"plain-secret"


def test_standard_valid_signature_passes():
    verify_standard(standard_signature(KEY, "msg_1", NOW, BODY))


def test_standard_any_of_several_signatures_may_match():
    good = standard_signature(KEY, "msg_1", NOW, BODY)
    verify_standard(f"v1,{base64.b64encode(b'x' * 32).decode()} {good}")


def test_standard_any_of_several_secrets_may_match():
    verify_standard(standard_signature(b"old", "msg_1", NOW, BODY), secrets=(SECRET, "old"))


def test_standard_signature_over_another_body_fails():
    with pytest.raises(WebhookSignatureError):
        verify_standard(standard_signature(KEY, "msg_1", NOW, BODY + b" "))


def test_standard_signature_of_another_message_id_fails():
    with pytest.raises(WebhookSignatureError):
        verify_standard(standard_signature(KEY, "msg_2", NOW, BODY))


def test_standard_unknown_signature_version_is_not_accepted():
    mac = standard_signature(KEY, "msg_1", NOW, BODY).removeprefix("v1,")
    with pytest.raises(WebhookSignatureError, match="no v1 signature"):
        verify_standard(f"v1a,{mac}")


@pytest.mark.parametrize("skew", [-301, 301])
def test_standard_timestamp_outside_five_minutes_fails(skew):
    signature = standard_signature(KEY, "msg_1", NOW + skew, BODY)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_standard(signature, timestamp=NOW + skew)


def test_standard_timestamp_within_five_minutes_passes():
    signature = standard_signature(KEY, "msg_1", NOW - 299, BODY)
    verify_standard(signature, timestamp=NOW - 299)


def test_standard_without_configured_secrets_refuses():
    with pytest.raises(WebhookSignatureError, match="no webhook secret"):
        verify_standard(standard_signature(KEY, "msg_1", NOW, BODY), secrets=())


def test_standard_missing_headers_fail():
    with pytest.raises(WebhookSignatureError, match="required"):
        verify_standard_webhook(
            secrets=[SECRET], message_id=None, timestamp=None, signature_header=None,
            body=BODY, now=NOW,
        )  # fmt: skip


def ghost_header(secret: str, body: bytes, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), body + str(timestamp_ms).encode(), hashlib.sha256)
    return f"sha256={mac.hexdigest()}, t={timestamp_ms}"


def test_ghost_signature_over_body_and_timestamp_passes():
    verify_ghost_webhook(
        secret="s", signature_header=ghost_header("s", BODY, NOW * 1000), body=BODY, now=NOW
    )


def test_ghost_signature_with_a_changed_timestamp_fails():
    header = ghost_header("s", BODY, NOW * 1000).replace(f"t={NOW * 1000}", f"t={NOW * 1000 + 1}")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_ghost_webhook(secret="s", signature_header=header, body=BODY, now=NOW)


def test_ghost_old_timestamp_fails():
    header = ghost_header("s", BODY, (NOW - 301) * 1000)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_ghost_webhook(secret="s", signature_header=header, body=BODY, now=NOW)


def test_ghost_header_without_timestamp_fails():
    mac = hmac.new(b"s", BODY, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookSignatureError):
        verify_ghost_webhook(secret="s", signature_header=f"sha256={mac}", body=BODY, now=NOW)


def test_forge_hex_hmac_of_the_body_passes():
    signature = hmac.new(b"f", BODY, hashlib.sha256).hexdigest()
    verify_forge_webhook(secret="f", signature_header=signature, body=BODY)


def test_forge_empty_header_fails():
    with pytest.raises(WebhookSignatureError):
        verify_forge_webhook(secret="f", signature_header="", body=BODY)


def test_forge_prefixed_signature_is_not_the_forgejo_format():
    signature = "sha256=" + hmac.new(b"f", BODY, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookSignatureError):
        verify_forge_webhook(secret="f", signature_header=signature, body=BODY)


def test_forge_without_a_secret_refuses_even_unsigned_requests():
    with pytest.raises(WebhookSignatureError, match="no webhook secret"):
        verify_forge_webhook(secret=None, signature_header=None, body=BODY)


def test_github_sha256_header_passes():
    signature = "sha256=" + hmac.new(b"g", BODY, hashlib.sha256).hexdigest()
    verify_github_webhook(secret="g", signature_header=signature, body=BODY)


def test_github_sha1_header_is_not_enough():
    signature = "sha1=" + hmac.new(b"g", BODY, hashlib.sha1).hexdigest()
    with pytest.raises(WebhookSignatureError):
        verify_github_webhook(secret="g", signature_header=signature, body=BODY)


def test_github_wrong_secret_fails():
    signature = "sha256=" + hmac.new(b"other", BODY, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_github_webhook(secret="g", signature_header=signature, body=BODY)
