"""The machine's own ceiling: how many RSA-2048 signatures one core makes per second.

Every delivery is signed (draft-cavage, rsa-sha256 over a per-inbox signing string), so
single-core signing is the most a worker core could ever deliver. Throughput figures are
reported as a ratio to this rate measured in the same run, which makes them comparable
across machines and across a noisy machine's good and bad minutes.
"""

from __future__ import annotations

import statistics
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_SIGNING_STRING = (
    b"(request-target): post /users/follower0/inbox\nhost: 127.0.1.1:40000\n"
    b"date: Sat, 22 Nov 2025 03:00:00 GMT\n"
    b"digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
)


def rsa_signatures_per_second(
    seconds: float = 1.0, *, key: rsa.RSAPrivateKey | None = None
) -> float:
    """Signatures per second on this core over about ``seconds``."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pad, digest = padding.PKCS1v15(), hashes.SHA256()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(20):
            key.sign(_SIGNING_STRING, pad, digest)
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def signing_ceiling(rounds: int = 3, seconds: float = 1.0) -> dict[str, float]:
    """The median of a few measurements, with the spread so noise shows."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rates = [rsa_signatures_per_second(seconds, key=key) for _ in range(rounds)]
    return {
        "rsa2048_signatures_per_second": round(statistics.median(rates), 1),
        "min": round(min(rates), 1),
        "max": round(max(rates), 1),
        "rounds": rounds,
    }


if __name__ == "__main__":
    print(signing_ceiling())
