"""Telling followers' servers that an account's profile changed (name, avatar, keys, moves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.vocabulary import PUBLIC


def actor_update_activity(
    activity_id: str, actor_document: dict[str, Any], followers_url: str, when: datetime
) -> dict[str, Any]:
    """An `Update` carrying the whole actor document, addressed like Mastodon's."""
    embedded = {key: value for key, value in actor_document.items() if key != "@context"}
    return {
        "@context": actor_document["@context"],
        "id": activity_id,
        "type": "Update",
        "actor": actor_document["id"],
        "published": format_timestamp(when),
        "to": [PUBLIC],
        "cc": [followers_url],
        "object": embedded,
    }
