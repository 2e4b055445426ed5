"""CPU per verified signed inbox POST, in this process: our verifiers against the libraries.

A Mastodon-sized `Create` (about 2 KB of JSON) is signed once with an RSA-2048 key (the
key every fediverse server uses), then verified `--requests` times by each of:

    rfc9421          our RFC 9421 verifier as the inbox route runs it: raw header lines ->
                     `parse_signature_fields` (digest, structured fields, coverage, time
                     window, signature base) -> `verify_with_key` (the RSA check)
    rfc9421-parse    the same without the RSA check: the part the structured-field parser
                     is in
    rfc9421-library  http-message-signatures' `HTTPMessageVerifier` on the same request,
                     with the same coverage required and the Content-Digest checked
    cavage           our draft-cavage verifier on the same activity signed as Mastodon signs
    cavage-library   `httpsig` (or a fork: `pip install python-httpsig-socialhome`; not a
                     dependency), when importable, on that cavage request; it checks the
                     signature only (no digest, no Date window) and, as its API takes the
                     PEM per verifier, parses the key on every request

Each variant runs once per round, the rounds interleave the variants, and the figure is the
median over `--rounds` rounds, in microseconds of CPU per request. The public key is parsed
once for the other variants (ours caches it; http-message-signatures is handed the parsed
key).

    python -m bench.signature_verification_cost [--requests 2000] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms

from federation.signatures import cavage, rfc9421
from federation.signatures.header_fields import collect_raw_header_fields
from federation.signatures.verification import parse_signature_fields, verify_with_key

INBOX = "https://relay.example/inbox"
KEY_ID = "https://mastodon.example/users/alice#main-key"
ACTOR = "https://mastodon.example/users/alice"


def _create_note() -> bytes:
    note_id = f"{ACTOR}/statuses/112233445566778899"
    document = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {
                "ostatus": "http://ostatus.org#",
                "atomUri": "ostatus:atomUri",
                "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
                "conversation": "ostatus:conversation",
                "sensitive": "as:sensitive",
                "toot": "http://joinmastodon.org/ns#",
                "votersCount": "toot:votersCount",
            },
        ],
        "id": f"{note_id}/activity",
        "type": "Create",
        "actor": ACTOR,
        "published": "2024-05-01T12:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{ACTOR}/followers"],
        "object": {
            "id": note_id,
            "type": "Note",
            "summary": None,
            "inReplyTo": None,
            "published": "2024-05-01T12:00:00Z",
            "url": "https://mastodon.example/@alice/112233445566778899",
            "attributedTo": ACTOR,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [f"{ACTOR}/followers"],
            "sensitive": False,
            "atomUri": note_id,
            "conversation": "tag:mastodon.example,2024-05-01:objectId=123:objectType=Conversation",
            "content": "<p>" + "A release note worth relaying to every follower. " * 12 + "</p>",
            "attachment": [],
            "tag": [{"type": "Hashtag", "href": "https://mastodon.example/tags/release"}],
            "replies": {"id": f"{note_id}/replies", "type": "Collection"},
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class _LibraryRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _SignedPosts:
    body: bytes
    public_pem: str
    public_key: rsa.RSAPublicKey
    rfc9421_headers: dict[str, str]
    cavage_headers: dict[str, str]
    signed_at: float


def _signed_posts() -> _SignedPosts:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = _create_note()
    now = time.time()
    common = {
        "Host": "relay.example",
        "User-Agent": "http.rb/5.1.1 (Mastodon/4.3.0; +https://mastodon.example/)",
        "Content-Type": "application/activity+json",
        "Content-Length": str(len(body)),
        "Accept-Encoding": "gzip",
    }
    rfc9421_headers = {**common}
    rfc9421_headers.update(
        rfc9421.sign_message("POST", INBOX, rfc9421_headers, body, KEY_ID, private_key, now=now)
    )
    cavage_headers = {**common}
    cavage_headers.update(
        cavage.sign_request("POST", INBOX, cavage_headers, body, KEY_ID, private_key, now=now)
    )
    return _SignedPosts(
        body, public_pem, private_key.public_key(), rfc9421_headers, cavage_headers, now
    )


def _raw_lines(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


def _ours(posts: _SignedPosts, headers: dict[str, str], *, check_key: bool) -> Callable[[], None]:
    raw = _raw_lines(headers)

    def verify() -> None:
        fields = collect_raw_header_fields(raw)
        pending = parse_signature_fields("POST", INBOX, fields, posts.body, now=posts.signed_at)
        if check_key:
            verify_with_key(pending, posts.public_pem)

    return verify


def _rfc9421_library(posts: _SignedPosts) -> Callable[[], None]:
    request = _LibraryRequest("POST", INBOX, dict(posts.rfc9421_headers))
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=MappingKeyResolver(public_keys={KEY_ID: posts.public_key}, private_keys={}),
    )
    required = ("@method", "@target-uri", "@authority", "content-digest")

    def verify() -> None:
        verifier.verify(request, body=posts.body, require_components=required)

    return verify


def _cavage_library(posts: _SignedPosts) -> Callable[[], None] | None:
    try:
        import httpsig  # type: ignore[import-not-found]
    except ImportError:
        return None
    headers = dict(posts.cavage_headers)
    public_pem = posts.public_pem.encode()

    def verify() -> None:
        verifier = httpsig.HeaderVerifier(
            headers=headers,
            secret=public_pem,
            required_headers=["(request-target)", "host", "date", "digest"],
            method="POST",
            path="/inbox",
            sign_header="signature",
        )
        if not verifier.verify():
            raise AssertionError("httpsig refused the cavage signature")

    return verify


def _variants(posts: _SignedPosts) -> dict[str, Callable[[], None]]:
    variants = {
        "rfc9421": _ours(posts, posts.rfc9421_headers, check_key=True),
        "rfc9421-parse": _ours(posts, posts.rfc9421_headers, check_key=False),
        "rfc9421-library": _rfc9421_library(posts),
        "cavage": _ours(posts, posts.cavage_headers, check_key=True),
    }
    library = _cavage_library(posts)
    if library is not None:
        variants["cavage-library"] = library
    return variants


def _microseconds_per_call(verify: Callable[[], None], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        verify()
    return (time.process_time() - started) * 1e6 / requests


def measure(requests: int, rounds: int) -> dict[str, Any]:
    posts = _signed_posts()
    variants = _variants(posts)
    for verify in variants.values():
        verify()  # warm caches (public key, private key) and fail early if one refuses
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, verify in variants.items():
            samples[name].append(_microseconds_per_call(verify, requests))
    return {
        "requests": requests,
        "rounds": rounds,
        "body_bytes": len(posts.body),
        "median_us_per_request": {
            name: round(statistics.median(values), 1) for name, values in samples.items()
        },
        "spread_us": {
            name: [round(min(values), 1), round(max(values), 1)] for name, values in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    arguments = parser.parse_args()
    result = measure(arguments.requests, arguments.rounds)
    if arguments.json:
        print(json.dumps(result))
        return
    print(f"{result['body_bytes']} B body, {arguments.requests} requests x {arguments.rounds}")
    for name, median in result["median_us_per_request"].items():
        low, high = result["spread_us"][name]
        print(f"  {name:16} {median:8.1f} us/request  (rounds {low}-{high})")


if __name__ == "__main__":
    main()
