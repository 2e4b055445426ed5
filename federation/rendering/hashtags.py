"""Hashtags: source tags → names Mastodon recognises, `Hashtag` tag objects and their links.

Mastodon only links hashtags made of letters, digits and underscores with at least one
non-digit, so "Open Source" becomes #OpenSource and punctuation (or markup) is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from federation.rendering.html_sanitizer import escape_text
from federation.rendering.source_content import plain_text

_WORD = re.compile(r"[^\W_]+|_+")
MAX_HASHTAG_LENGTH = 100
MAX_HASHTAGS = 20


@dataclass(frozen=True, slots=True)
class Hashtag:
    name: str
    href: str

    def as_object(self) -> dict[str, Any]:
        return {"type": "Hashtag", "href": self.href, "name": f"#{self.name}"}

    def as_link(self) -> str:
        return (
            f'<a href="{escape_text(self.href)}" class="mention hashtag" rel="tag">'
            f"#<span>{escape_text(self.name)}</span></a>"
        )


def hashtag_name(raw: str) -> str | None:
    words: list[str] = _WORD.findall(plain_text(raw))
    if not words:
        return None
    if len(words) == 1:
        name = words[0]
    else:
        name = "".join(word[:1].upper() + word[1:] for word in words)
    name = name[:MAX_HASHTAG_LENGTH]
    if name.strip("_").isdigit() or not name.strip("_"):
        return None
    return name


def hashtags(raw_tags: Iterable[str], base_url: str) -> list[Hashtag]:
    """Distinct (case-insensitively) hashtags in the order given."""
    seen: set[str] = set()
    result: list[Hashtag] = []
    for raw in raw_tags:
        name = hashtag_name(raw)
        if name is None or name.casefold() in seen:
            continue
        seen.add(name.casefold())
        result.append(Hashtag(name, f"{base_url}/tags/{quote(name.lower())}"))
        if len(result) == MAX_HASHTAGS:
            break
    return result
