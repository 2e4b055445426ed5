"""How a published object becomes a status on an existing Mastodon account (REST API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from federation.rendering.html_sanitizer import html_to_text

MAX_MEDIA: Final = 4
VISIBILITIES: Final = frozenset({"public", "unlisted", "private", "direct"})


@dataclass(frozen=True, slots=True)
class MediaSpec:
    url: str
    description: str
    media_type: str | None


@dataclass(frozen=True, slots=True)
class StatusDraft:
    text: str
    spoiler_text: str
    sensitive: bool
    language: str | None
    visibility: str
    media: tuple[MediaSpec, ...]

    def form(self, media_ids: list[str]) -> dict[str, Any]:
        """The JSON body of POST /api/v1/statuses and PUT /api/v1/statuses/:id."""
        body: dict[str, Any] = {
            "status": self.text,
            "visibility": self.visibility,
            "sensitive": self.sensitive,
            "spoiler_text": self.spoiler_text,
        }
        if self.language:
            body["language"] = self.language
        if media_ids:
            body["media_ids"] = media_ids
        return body


def compose_status(
    document: dict[str, Any],
    *,
    canonical_url: str | None,
    visibility: str,
    max_characters: int = 500,
) -> StatusDraft:
    """A Note becomes its text; an Article its title and link. The canonical link is always
    included, so a status can be found again by it."""
    kind = document.get("type")
    url = canonical_url or _first_url(document.get("url"))
    spoiler = ""
    if kind == "Article":
        body = _text(document.get("name")) or html_to_text(_text(document.get("summary")))
    else:
        body = html_to_text(_text(document.get("content")))
        spoiler = html_to_text(_text(document.get("summary")))
    suffix = f"\n\n{url}" if url and url not in body else ""
    room = max(0, max_characters - len(suffix))
    if len(body) > room:
        body = body[: max(0, room - 1)].rstrip() + "…"
    return StatusDraft(
        text=(body + suffix).strip(),
        spoiler_text=spoiler[:max_characters],
        sensitive=bool(document.get("sensitive")) or bool(spoiler),
        language=_language(document),
        visibility=visibility if visibility in VISIBILITIES else "public",
        media=_media(document.get("attachment")),
    )


def matches_status(status: dict[str, Any], draft: StatusDraft, canonical_url: str | None) -> bool:
    """Whether an existing status is the one a draft would create (for late retries)."""
    content = _text(status.get("content"))
    if canonical_url and canonical_url in content:
        return True
    return _normalized(html_to_text(content)) == _normalized(draft.text)


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first_url(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        href = value.get("href")
        return href if isinstance(href, str) else None
    if isinstance(value, list):
        for item in value:
            found = _first_url(item)
            if found:
                return found
    return None


def _language(document: dict[str, Any]) -> str | None:
    content_map = document.get("contentMap")
    if isinstance(content_map, dict):
        for key in content_map:
            if isinstance(key, str) and 0 < len(key) <= 16:
                return key
    language = document.get("language")
    return language if isinstance(language, str) and language else None


def _media(value: Any) -> tuple[MediaSpec, ...]:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    media: list[MediaSpec] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        media_type = item.get("mediaType")
        is_image = item.get("type") == "Image" or (
            isinstance(media_type, str) and media_type.startswith("image/")
        )
        url = _first_url(item.get("url"))
        if not is_image or not url:
            continue
        media.append(
            MediaSpec(
                url=url,
                description=_text(item.get("name"))[:1500],
                media_type=media_type if isinstance(media_type, str) else None,
            )
        )
    return tuple(media[:MAX_MEDIA])
