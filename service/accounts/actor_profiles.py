"""Turn a stored Account into the protocol's ActorProfile (the one mapping both ways share)."""

from __future__ import annotations

from typing import Any

from federation.activitypub.actor import ActorProfile, ProfileField, build_actor_document
from federation.activitypub.urls import InstanceUrls
from federation.signatures.keys import ed25519_public_multibase
from service.accounts.store import ED25519, RSA, active_key
from service.db.models import Account


def actor_profile(account: Account) -> ActorProfile:
    ed_key = next((k for k in account.keys if k.kind == ED25519 and k.retired_at is None), None)
    return ActorProfile(
        handle=account.handle,
        display_name=account.display_name,
        summary_html=account.summary,
        actor_type=account.actor_type,
        rsa_public_pem=active_key(account, RSA).public_pem,
        ed25519_multibase=ed25519_public_multibase(ed_key.public_pem) if ed_key else None,
        published=account.created_at,
        manually_approves_followers=account.manually_approves_followers,
        discoverable=account.discoverable,
        indexable=account.indexable,
        avatar_url=account.avatar_url,
        header_url=account.header_url,
        fields=tuple(
            ProfileField(name=str(item["name"]), value=str(item["value"]))
            for item in account.profile_fields
        ),
        also_known_as=tuple(account.also_known_as),
        moved_to=account.moved_to,
    )


def actor_document(account: Account, urls: InstanceUrls) -> dict[str, Any]:
    return build_actor_document(
        actor_profile(account), urls.account(account.handle), urls.shared_inbox
    )
