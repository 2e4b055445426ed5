"""The actor document Mastodon and other servers read to follow an account."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.urls import ActorUrls
from federation.activitypub.vocabulary import ACTOR_CONTEXT_EXTENSIONS, AS_CONTEXT, SECURITY_CONTEXT
from federation.rendering.html_sanitizer import escape_text, sanitize_html

ACTOR_TYPES = frozenset({"Service", "Organization", "Person", "Application", "Group"})


@dataclass(frozen=True, slots=True)
class ProfileField:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ActorProfile:
    """Everything an actor document says, independent of how it is stored."""

    handle: str
    display_name: str
    summary_html: str
    actor_type: str
    rsa_public_pem: str
    ed25519_multibase: str | None
    published: datetime
    manually_approves_followers: bool = False
    discoverable: bool = True
    indexable: bool = True
    avatar_url: str | None = None
    header_url: str | None = None
    fields: tuple[ProfileField, ...] = ()
    also_known_as: tuple[str, ...] = ()
    moved_to: str | None = None
    extra_links: dict[str, str] = field(default_factory=dict)


def _image(url: str) -> dict[str, str]:
    return {"type": "Image", "url": url}


def _field_value_html(value: str) -> str:
    # Profile field values that are links become anchors, as Mastodon renders them.
    if value.startswith(("https://", "http://")):
        escaped = escape_text(value)
        return f'<a href="{escaped}" rel="me nofollow noopener noreferrer">{escaped}</a>'
    return escape_text(value)


def build_actor_document(
    profile: ActorProfile, urls: ActorUrls, shared_inbox: str
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT, dict(ACTOR_CONTEXT_EXTENSIONS)],
        "id": urls.actor,
        "type": profile.actor_type,
        "preferredUsername": profile.handle,
        "name": profile.display_name or profile.handle,
        "summary": sanitize_html(profile.summary_html),
        "url": urls.profile_page,
        "inbox": urls.inbox,
        "outbox": urls.outbox,
        "followers": urls.followers,
        "following": urls.following,
        "featured": urls.featured,
        "endpoints": {"sharedInbox": shared_inbox},
        "publicKey": {
            "id": urls.rsa_key,
            "owner": urls.actor,
            "publicKeyPem": profile.rsa_public_pem,
        },
        "manuallyApprovesFollowers": profile.manually_approves_followers,
        "discoverable": profile.discoverable,
        "indexable": profile.indexable,
        "published": format_timestamp(profile.published),
        "attachment": [
            {"type": "PropertyValue", "name": item.name, "value": _field_value_html(item.value)}
            for item in profile.fields
        ],
        "alsoKnownAs": list(profile.also_known_as),
    }
    if profile.ed25519_multibase:
        document["@context"].insert(2, "https://w3id.org/security/multikey/v1")
        document["assertionMethod"] = [
            {
                "id": urls.ed25519_key,
                "type": "Multikey",
                "controller": urls.actor,
                "publicKeyMultibase": profile.ed25519_multibase,
            }
        ]
    if profile.avatar_url:
        document["icon"] = _image(profile.avatar_url)
    if profile.header_url:
        document["image"] = _image(profile.header_url)
    if profile.moved_to:
        document["movedTo"] = profile.moved_to
    return document
