"""The instance actor: the relay itself as an Application actor, whose key signs the relay's
own fetches of remote documents (needed by servers in authorized-fetch mode)."""

from __future__ import annotations

from typing import Any

from federation.activitypub.urls import InstanceUrls
from federation.activitypub.vocabulary import AS_CONTEXT, SECURITY_CONTEXT


def instance_key_id(urls: InstanceUrls) -> str:
    return f"{urls.instance_actor}#main-key"


def build_instance_actor(urls: InstanceUrls, domain: str, public_pem: str) -> dict[str, Any]:
    return {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": urls.instance_actor,
        "type": "Application",
        "preferredUsername": domain,
        "name": domain,
        "url": urls.base_url,
        "inbox": urls.shared_inbox,
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "manuallyApprovesFollowers": True,
        "discoverable": False,
        "indexable": False,
        "publicKey": {
            "id": instance_key_id(urls),
            "owner": urls.instance_actor,
            "publicKeyPem": public_pem,
        },
    }
