"""One HTML allow-list for everything the relay publishes or stores from remote servers.

Modelled on what Mastodon keeps when it renders remote content, so what we send survives
unchanged and what we receive cannot carry script into an HTML page.
"""

from __future__ import annotations

import html

import nh3

_ALLOWED_TAGS = {
    "p", "br", "span", "a", "del", "pre", "code", "em", "strong", "b", "i", "u", "ul", "ol",
    "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    # "class" is governed by _ALLOWED_CLASSES, which ammonia wants kept out of this map.
    "a": {"href", "translate"},
    "span": {"translate"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
_ALLOWED_CLASSES = {
    "a": {"mention", "hashtag", "u-url", "h-card", "unhandled-link"},
    "span": {"h-card", "invisible", "ellipsis", "p-name", "u-url"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_LINK_REL = "nofollow noopener noreferrer"


def sanitize_html(fragment: str) -> str:
    """Reduce an HTML fragment to the allow-list; links get rel=nofollow noopener noreferrer."""
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        allowed_classes=_ALLOWED_CLASSES,
        url_schemes=_URL_SCHEMES,
        link_rel=_LINK_REL,
        strip_comments=True,
    )


def escape_text(text: str) -> str:
    """Escape plain text for inclusion in HTML (element content or quoted attribute)."""
    return html.escape(text, quote=True)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, paragraphs and breaks as newlines."""
    with_breaks = (
        fragment.replace("<br>", "\n")
        .replace("<br/>", "\n")
        .replace("<br />", "\n")
        .replace("</p>", "\n\n")
    )
    text = nh3.clean(with_breaks, tags=set(), attributes={})
    return html.unescape(text).strip()
