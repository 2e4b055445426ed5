"""WebFinger (RFC 7033) as fediverse servers use it to turn @handle@domain into an actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from federation.activitypub.urls import ActorUrls
from federation.activitypub.vocabulary import ACTIVITY_JSON


class UnresolvableResource(ValueError):
    """The resource names nothing this server could hold (wrong domain, bad syntax)."""


@dataclass(frozen=True, slots=True)
class ResourceQuery:
    handle: str


def parse_resource(resource: str, *, domain: str, base_url: str) -> ResourceQuery:
    """Find the local handle a WebFinger resource names: acct:handle@domain or the actor URL."""
    resource = unquote(resource.strip())
    if resource.startswith("acct:"):
        address = resource[len("acct:") :].lstrip("@")
        handle, separator, host = address.rpartition("@")
        if not separator or not handle:
            raise UnresolvableResource("acct: resource must be acct:handle@domain")
        if host.lower() != domain.lower():
            raise UnresolvableResource(f"domain '{host}' is not served here")
        return ResourceQuery(handle=handle.lower())
    if resource.startswith(("https://", "http://")):
        parts = urlsplit(resource)
        base = urlsplit(base_url)
        if parts.netloc.lower() != base.netloc.lower():
            raise UnresolvableResource("URL is not on this server")
        path = parts.path.rstrip("/")
        for prefix in ("/users/", "/@"):
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                return ResourceQuery(handle=path[len(prefix) :].lower())
        raise UnresolvableResource("URL does not name an account")
    raise UnresolvableResource("resource must be an acct: URI or an actor URL")


def build_webfinger(handle: str, domain: str, urls: ActorUrls) -> dict[str, Any]:
    return {
        "subject": f"acct:{handle}@{domain}",
        "aliases": [urls.actor, urls.profile_page],
        "links": [
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": urls.profile_page,
            },
            {"rel": "self", "type": ACTIVITY_JSON, "href": urls.actor},
        ],
    }


def build_host_meta(base_url: str) -> str:
    template = f"{base_url}/.well-known/webfinger?resource={{uri}}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="application/jrd+json" template="{template}"/>\n'
        "</XRD>\n"
    )
