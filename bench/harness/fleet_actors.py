"""The fleet's fake servers and their actors, and the documents they publish."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness.fleet_faults import ActiveFault

ACTIVITY_STREAMS = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
PUBLIC_COLLECTION = "https://www.w3.org/ns/activitystreams#Public"


@dataclass(frozen=True, slots=True)
class PooledKey:
    private_key: rsa.RSAPrivateKey
    public_pem: str


_KEY_POOLS: dict[int, list[PooledKey]] = {}


def key_pool(size: int, bits: int = 2048) -> list[PooledKey]:
    """A process-wide pool of RSA key pairs, grown on demand and reused by every fleet.

    Generating a 2048-bit key costs tens of milliseconds; ten thousand actors each with
    their own key would take minutes, so actors share a few keys under distinct key ids.
    """
    pool = _KEY_POOLS.setdefault(bits, [])
    while len(pool) < size:
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
        pool.append(PooledKey(private, public_pem))
    return pool[:size]


@dataclass(eq=False, slots=True)
class FleetActor:
    """One account on a fake server. ``kind`` is ``Person`` or ``Application``."""

    host: FakeHost
    handle: str
    key: PooledKey
    kind: str = "Person"
    also_known_as: list[str] = field(default_factory=list)
    moved_to: str | None = None
    gone: bool = False

    @property
    def id(self) -> str:
        if self.kind == "Application":
            return f"{self.host.base_url}/actor"
        return f"{self.host.base_url}/users/{self.handle}"

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.host.base_url}/inbox"

    @property
    def acct(self) -> str:
        return f"{self.handle}@{self.host.domain}"

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "@context": [ACTIVITY_STREAMS, SECURITY_V1],
            "id": self.id,
            "type": self.kind,
            "preferredUsername": self.handle,
            "name": self.handle,
            "url": f"{self.host.base_url}/@{self.handle}",
            "inbox": self.inbox,
            "outbox": f"{self.id}/outbox",
            "followers": f"{self.id}/followers",
            "following": f"{self.id}/following",
            "manuallyApprovesFollowers": False,
            "discoverable": True,
            "endpoints": {"sharedInbox": self.shared_inbox},
            "publicKey": {
                "id": self.key_id,
                "owner": self.id,
                "publicKeyPem": self.key.public_pem,
            },
        }
        if self.also_known_as:
            document["alsoKnownAs"] = list(self.also_known_as)
        if self.moved_to:
            document["movedTo"] = self.moved_to
        return document


@dataclass(eq=False)
class FakeHost:
    """One fake server: an address of its own on loopback, its actors and its faults."""

    index: int
    address: str
    port: int
    actors: dict[str, FleetActor] = field(default_factory=dict)
    instance_actor: FleetActor | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: asyncio.Server | None = None
    faults: list[ActiveFault] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def domain(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def listening(self) -> bool:
        return self.server is not None

    def fault_for(self, is_inbox_post: bool, now: float) -> ActiveFault | None:
        """The first fault in force for this request, dropping faults that have ended."""
        if not self.faults:
            return None
        self.faults = [fault for fault in self.faults if not fault.expired(now)]
        for fault in self.faults:
            if fault.in_force(now) and fault.applies_to(is_inbox_post):
                return fault
        return None

    def webfinger(self, handle: str) -> dict[str, Any] | None:
        actor = self.actors.get(handle)
        if actor is None or actor.gone:
            return None
        return {
            "subject": f"acct:{actor.acct}",
            "aliases": [actor.id],
            "links": [
                {"rel": "self", "type": "application/activity+json", "href": actor.id},
                {
                    "rel": "http://webfinger.net/rel/profile-page",
                    "type": "text/html",
                    "href": f"{self.base_url}/@{handle}",
                },
            ],
        }

    def nodeinfo(self) -> dict[str, Any]:
        return {
            "version": "2.0",
            "software": {"name": "mastodon", "version": "4.3.0"},
            "protocols": ["activitypub"],
            "services": {"inbound": [], "outbound": []},
            "openRegistrations": False,
            "usage": {"users": {"total": len(self.actors)}, "localPosts": 0},
            "metadata": {},
        }
