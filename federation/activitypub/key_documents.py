"""Finding a signing key in a fetched ActivityPub document.

A keyId usually names a key inside an actor document (`https://host/users/x#main-key`),
sometimes a standalone key document with an `owner`. Either way the answer is the key's
PEM and the actor that owns it, which is what an inbox compares with the activity's actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit


class KeyNotFound(ValueError):
    """The document does not contain the key, or names an owner it cannot vouch for."""


@dataclass(frozen=True, slots=True)
class KeyInDocument:
    key_id: str
    owner: str
    public_key_pem: str
    # "actor": found in the owner's own document; "key": a standalone key document whose
    # owner still has to confirm the key.
    source: Literal["actor", "key"]


def same_origin(first: str, second: str) -> bool:
    try:
        a, b = urlsplit(first), urlsplit(second)
        return (a.scheme.lower(), a.hostname, a.port) == (b.scheme.lower(), b.hostname, b.port)
    except ValueError:
        return False


def find_public_key(document: Mapping[str, Any], key_id: str) -> KeyInDocument:
    document_id = document.get("id")
    if not isinstance(document_id, str):
        raise KeyNotFound("document has no id")
    for entry in _public_key_entries(document):
        if entry.get("id") != key_id:
            continue
        owner = entry.get("owner", document_id)
        if owner != document_id:
            raise KeyNotFound("key entry names a different owner than the actor holding it")
        return KeyInDocument(key_id, document_id, _pem(entry), "actor")
    if document_id == key_id:
        owner = document.get("owner")
        if not isinstance(owner, str) or not same_origin(owner, key_id):
            raise KeyNotFound("key document's owner is missing or on another origin")
        return KeyInDocument(key_id, owner, _pem(document), "key")
    raise KeyNotFound(f"document does not contain key {key_id}")


def lists_key(actor_document: Mapping[str, Any], key_id: str) -> bool:
    """Whether an actor document claims the key (confirms a standalone key document)."""
    return any(entry.get("id") == key_id for entry in _public_key_entries(actor_document))


def _public_key_entries(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = document.get("publicKey")
    candidates = value if isinstance(value, list) else [value]
    return [entry for entry in candidates[:16] if isinstance(entry, Mapping)]


def _pem(entry: Mapping[str, Any]) -> str:
    pem = entry.get("publicKeyPem")
    if not isinstance(pem, str) or "BEGIN" not in pem:
        raise KeyNotFound("key has no publicKeyPem")
    return pem
