"""Parsing of remote actors' public keys for signature verification."""

from __future__ import annotations

from functools import lru_cache
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from federation.signatures.errors import KeyUnusable

VerificationKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

MIN_RSA_KEY_BITS = 2048
# Larger moduli or exponents make every verification slower; no real server uses them.
MAX_RSA_KEY_BITS = 8192
MAX_RSA_PUBLIC_EXPONENT = 2**32
_MAX_PEM_LENGTH = 16_384


@lru_cache(maxsize=4096)
def load_public_key(public_pem: str) -> VerificationKey:
    """Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1), once per distinct PEM."""
    if not isinstance(public_pem, str) or len(public_pem) > _MAX_PEM_LENGTH:
        raise KeyUnusable("public key is not a PEM string of sensible length")
    try:
        key = serialization.load_pem_public_key(public_pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as error:
        raise KeyUnusable("public key is not a readable PEM key") from error
    if isinstance(key, rsa.RSAPublicKey):
        check_rsa_key_strength(key)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyUnusable("public key is neither RSA nor Ed25519")


def check_rsa_key_strength(key: rsa.RSAPublicKey) -> None:
    if not MIN_RSA_KEY_BITS <= key.key_size <= MAX_RSA_KEY_BITS:
        raise KeyUnusable(f"RSA key of {key.key_size} bits is outside the accepted range")
    exponent = key.public_numbers().e
    if exponent < 3 or exponent > MAX_RSA_PUBLIC_EXPONENT or exponent % 2 == 0:
        raise KeyUnusable("RSA public exponent is not acceptable")
