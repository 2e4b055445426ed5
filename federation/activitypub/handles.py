"""Account handles: the local part of @handle@domain."""

from __future__ import annotations

import re

# Mastodon accepts letters, digits and underscores; we also allow inner dots and dashes,
# which other servers accept and which WebFinger carries unchanged.
_HANDLE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,62}[a-z0-9_])?$")
RESERVED_HANDLES = frozenset({"actor", "inbox", "admin", "ops", "api", "well-known", "hooks"})


class InvalidHandle(ValueError):
    pass


def validate_handle(handle: str) -> str:
    """Return the handle if it is a valid local handle, else raise InvalidHandle with the reason."""
    if not _HANDLE.match(handle):
        raise InvalidHandle(
            "handle must be 1-64 characters of lowercase letters, digits, '_', '.', '-', "
            "starting and ending with a letter, digit or '_'"
        )
    if handle in RESERVED_HANDLES:
        raise InvalidHandle(f"handle '{handle}' is reserved")
    return handle
