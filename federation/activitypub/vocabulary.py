"""ActivityStreams and ActivityPub constants shared by every document the relay writes or reads."""

from __future__ import annotations

from typing import Final

AS_CONTEXT: Final = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT: Final = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT: Final = "https://w3id.org/security/multikey/v1"
PUBLIC: Final = "https://www.w3.org/ns/activitystreams#Public"

ACTIVITY_JSON: Final = "application/activity+json"
LD_JSON_AS: Final = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JRD_JSON: Final = "application/jrd+json"

# Content types under which a remote server may serve an ActivityPub document.
ACTIVITYPUB_MEDIA_TYPES: Final = frozenset({"application/activity+json", "application/ld+json"})

# Mastodon-specific terms used in actor documents (discoverable, indexable, featured, ...).
ACTOR_CONTEXT_EXTENSIONS: Final = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "Hashtag": "as:Hashtag",
    "sensitive": "as:sensitive",
}
