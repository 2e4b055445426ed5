"""Fediverse account addresses (`user@domain`) as people write them, and the WebFinger
query that turns one into an actor."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

_USER = re.compile(r"^[A-Za-z0-9_.~+-]{1,255}$")
# A domain, optionally with a port (test servers listen on loopback ports).
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?$")
ACTIVITY_LINK_TYPES: Final = frozenset(
    {
        "application/activity+json",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    }
)


class InvalidAddress(ValueError):
    """Not an account address (`user@domain`, `@user@domain` or `acct:user@domain`)."""


@dataclass(frozen=True, slots=True)
class AccountAddress:
    user: str
    domain: str

    def __str__(self) -> str:
        return f"{self.user}@{self.domain}"

    @property
    def resource(self) -> str:
        return f"acct:{self.user}@{self.domain}"

    def webfinger_url(self, scheme: str = "https") -> str:
        return (
            f"{scheme}://{self.domain}/.well-known/webfinger"
            f"?resource={quote(self.resource, safe=':@')}"
        )


def parse_address(text: str) -> AccountAddress:
    value = text.strip()
    if value.lower().startswith("acct:"):
        value = value[len("acct:") :]
    value = value.removeprefix("@")
    user, separator, domain = value.rpartition("@")
    if not separator or not _USER.match(user) or not _DOMAIN.match(domain):
        raise InvalidAddress(f"'{text}' is not an account address like user@example.social")
    return AccountAddress(user=user, domain=domain.lower())


def address_of_actor(handle: str, actor_id: str) -> str:
    """`handle@host` of an actor, the host taken from its id (with a port when it has one)."""
    return f"{handle}@{urlsplit(actor_id).netloc.lower()}"


def actor_link(jrd: Any) -> str | None:
    """The ActivityPub actor URL a WebFinger answer links to (`rel=self`)."""
    if not isinstance(jrd, dict):
        return None
    links = jrd.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        href = link.get("href")
        kind = link.get("type")
        if isinstance(href, str) and isinstance(kind, str) and kind in ACTIVITY_LINK_TYPES:
            scheme = urlsplit(href).scheme
            if scheme in ("https", "http"):
                return href
    return None
