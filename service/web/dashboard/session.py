"""Dashboard sessions: a signed cookie instead of the admin token itself, and CSRF tokens.

The cookie holds `v1.<issued>.<nonce>.<mac>`: the token never leaves the login form, a stolen
cookie expires, and changing the admin token or the secret key ends every session (both feed
the signing key). CSRF tokens are MACs of the session nonce, so they need no storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final

from service.runtime.settings import Settings

SESSION_COOKIE: Final = "fedirelay_admin"
LOGIN_COOKIE: Final = "fedirelay_login"
SESSION_SECONDS: Final = 12 * 3600
VERSION: Final = "v1"


def _signing_key(settings: Settings) -> bytes:
    material = f"{settings.effective_secret_key}\x00{settings.admin_token or ''}".encode()
    return hashlib.sha256(b"fedirelay dashboard session\x00" + material).digest()


def _mac(settings: Settings, message: str) -> str:
    return hmac.new(_signing_key(settings), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AdminSession:
    nonce: str
    issued_at: int


def issue_session(settings: Settings, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    nonce = secrets.token_urlsafe(18)
    payload = f"{VERSION}.{issued}.{nonce}"
    return f"{payload}.{_mac(settings, payload)}"


def read_session(
    settings: Settings, value: str | None, now: float | None = None
) -> AdminSession | None:
    """The session a cookie carries, or None when it is forged, stale or from another key."""
    if not value or not settings.admin_token:
        return None
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not parts[1].isdigit():
        return None
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(settings, payload), parts[3]):
        return None
    issued = int(parts[1])
    current = now if now is not None else time.time()
    if not (issued - 60 <= current <= issued + SESSION_SECONDS):
        return None
    return AdminSession(nonce=parts[2], issued_at=issued)


def csrf_token(settings: Settings, session: AdminSession) -> str:
    return _mac(settings, f"csrf.{session.nonce}")


def csrf_matches(settings: Settings, session: AdminSession, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(settings, session).encode(), presented.encode())


def new_login_nonce() -> str:
    return secrets.token_urlsafe(18)


def login_csrf(settings: Settings, nonce: str) -> str:
    """Login form token, tied to a short-lived cookie (the visitor has no session yet)."""
    return _mac(settings, f"login.{nonce}")


def login_csrf_matches(settings: Settings, nonce: str | None, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(login_csrf(settings, nonce).encode(), presented.encode())
