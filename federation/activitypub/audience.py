"""Who receives an activity: followers grouped so each server gets one copy per shared inbox."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def delivery_inboxes(recipients: Iterable[tuple[str, str | None]]) -> list[str]:
    """Collapse (inbox, shared inbox) pairs into the distinct inboxes to deliver to.

    A follower with a shared inbox is reached through it, so a server hosting many followers
    receives one POST. The order of first appearance is kept, which keeps fan-out stable.
    """
    seen: dict[str, None] = {}
    for inbox, shared_inbox in recipients:
        seen.setdefault(shared_inbox or inbox, None)
    return list(seen)


def inbox_host(inbox: str) -> str:
    """The host (with a non-default port) that a delivery to this inbox talks to."""
    return urlsplit(inbox).netloc.lower()
