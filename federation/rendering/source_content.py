"""A source's body (HTML, Markdown or plain text) as sanitized HTML, and its plain-text excerpt."""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from federation.rendering.html_sanitizer import escape_text, html_to_text, sanitize_html

EXCERPT_LENGTH = 300
# Markdown puts newlines between block elements; as plain text they would count as characters.
_BETWEEN_TAGS = re.compile(r">\n+<")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Raw HTML inside Markdown is shown as text, never passed through.
    return MarkdownIt("commonmark", {"html": False})


def content_html(content: str, content_format: str) -> str:
    if not content.strip():
        return ""
    if content_format == "markdown":
        rendered = _BETWEEN_TAGS.sub("><", _markdown().render(content))
        return sanitize_html(rendered).strip()
    if content_format == "text":
        paragraphs = [part.strip() for part in content.replace("\r\n", "\n").split("\n\n")]
        return "".join(
            "<p>" + escape_text(part).replace("\n", "<br>") + "</p>" for part in paragraphs if part
        )
    return sanitize_html(content).strip()


def excerpt(text: str, length: int = EXCERPT_LENGTH) -> str:
    """At most `length` characters of `text`, cut at a word with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= length:
        return flat
    cut = flat[: length - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" .,;:") + "…"


def plain_text(value: str) -> str:
    """A plain-text field (title, alt text, content warning) with any markup removed."""
    if "<" not in value and "&" not in value:
        return value.strip()
    return " ".join(html_to_text(value).split())
