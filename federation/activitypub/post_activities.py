"""The activities that carry a post's lifecycle to followers: Create, Update and Delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.vocabulary import AS_CONTEXT

POST_CONTEXT: list[Any] = [AS_CONTEXT, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"}]


def embedded(document: dict[str, Any]) -> dict[str, Any]:
    """The object as embedded in an activity: the activity already carries the context."""
    return {key: value for key, value in document.items() if key != "@context"}


def create_activity(activity_id: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": POST_CONTEXT,
        "id": activity_id,
        "type": "Create",
        "actor": document["attributedTo"],
        "published": document["published"],
        "to": document["to"],
        "cc": document["cc"],
        "object": embedded(document),
    }


def update_activity(activity_id: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": POST_CONTEXT,
        "id": activity_id,
        "type": "Update",
        "actor": document["attributedTo"],
        "published": document.get("updated", document["published"]),
        "to": document["to"],
        "cc": document["cc"],
        "object": embedded(document),
    }


def tombstone(document: dict[str, Any], deleted: datetime) -> dict[str, Any]:
    return {
        "id": document["id"],
        "type": "Tombstone",
        "formerType": document.get("type", "Note"),
        "deleted": format_timestamp(deleted),
    }


def delete_activity(
    activity_id: str, document: dict[str, Any], deleted: datetime
) -> dict[str, Any]:
    return {
        "@context": POST_CONTEXT,
        "id": activity_id,
        "type": "Delete",
        "actor": document["attributedTo"],
        "published": format_timestamp(deleted),
        "to": document["to"],
        "cc": document["cc"],
        "object": tombstone(document, deleted),
    }
