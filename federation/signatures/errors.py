"""Typed failures of request authentication.

Every way a signed request can be rejected has its own class, so the HTTP layer can map
them onto precise responses: most are 401 (the request is not authenticated), a body
that does not match its own digest is a 400.
"""

from __future__ import annotations


class SignatureError(Exception):
    """Base of every signature and digest failure; `status_code` is the HTTP answer."""

    status_code: int = 401
    reason: str = "signature_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def unauthorized(self) -> bool:
        return self.status_code == 401


class SignatureMissing(SignatureError):
    reason = "signature_missing"


class SignatureMalformed(SignatureError):
    reason = "signature_malformed"


class SignatureUnsupported(SignatureError):
    """An algorithm or covered component this implementation deliberately does not accept."""

    reason = "signature_unsupported"


class SignatureCoverageInsufficient(SignatureError):
    """The signature is well formed but does not cover what the request needs protected."""

    reason = "signature_coverage_insufficient"


class SignatureStale(SignatureError):
    """Outside the accepted time window: too old, in the future, or expired."""

    reason = "signature_stale"


class SignatureInvalid(SignatureError):
    """The cryptographic check failed; the key may have rotated, so a re-fetch is worth one try."""

    reason = "signature_invalid"


class KeyUnusable(SignatureError):
    """The public key could not be parsed or does not fit the algorithm."""

    reason = "key_unusable"


class DigestMissing(SignatureError):
    reason = "digest_missing"


class DigestMalformed(SignatureError):
    status_code = 400
    reason = "digest_malformed"


class DigestMismatch(SignatureError):
    status_code = 400
    reason = "digest_mismatch"
