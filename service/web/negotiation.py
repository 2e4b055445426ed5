"""Content negotiation between ActivityPub clients and browsers."""

from __future__ import annotations

from fastapi import Request

_AP_TYPES = ("application/activity+json", "application/ld+json")


def wants_activity_json(request: Request) -> bool:
    """True when the client asked for ActivityPub JSON rather than a web page.

    A browser's Accept lists text/html; fediverse servers list an ActivityPub type. When
    both appear, the one with the higher quality (then the earlier one) wins.
    """
    accept = request.headers.get("accept", "")
    best_ap: tuple[float, int] | None = None
    best_html: tuple[float, int] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        rank = (quality, -position)
        if media.lower() in _AP_TYPES and (best_ap is None or rank > best_ap):
            best_ap = rank
        elif media.lower() in ("text/html", "application/xhtml+xml") and (
            best_html is None or rank > best_html
        ):
            best_html = rank
    if best_ap is None or best_ap[0] <= 0:
        return False
    return best_html is None or best_ap >= best_html
