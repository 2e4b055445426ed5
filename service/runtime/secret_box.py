"""Encryption at rest for third-party credentials (Mastodon access tokens).

The key is derived from the relay's secret with HKDF, so rotating FEDIRELAY_SECRET_KEY
makes stored tokens unreadable (they must be entered again) rather than silently weak.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"fedirelay mastodon access token v1"


class SecretUnreadable(Exception):
    """The stored value was encrypted under another secret or was tampered with."""


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fedirelay", info=_INFO).derive(
        secret.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(secret_key: str, ciphertext: str) -> str:
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as error:
        raise SecretUnreadable("stored secret cannot be decrypted with the current key") from error
