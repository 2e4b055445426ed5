"""Ghost webhook payloads (`post.*` and `page.*` events) → `SourceEvent`s.

Ghost's body does not name the event; it carries `current` and `previous` snapshots, where
`previous` holds only the fields that changed. The transition of `status` tells a first
publication from an edit, and an empty `current` is a deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.sources.events import (
    POST,
    PUBLISHED,
    UNPUBLISHED,
    UPDATED,
    EventImage,
    IgnoredEvent,
    ParsedWebhook,
    PayloadError,
    SourceEvent,
)

GHOST = "ghost"


def parse_ghost_event(payload: Any) -> ParsedWebhook:
    if not isinstance(payload, Mapping):
        raise PayloadError("body", "must be a JSON object")
    wrapper_name = "post" if "post" in payload else "page" if "page" in payload else None
    if wrapper_name is None:
        return IgnoredEvent("only post and page events are published")
    wrapper = payload[wrapper_name]
    if not isinstance(wrapper, Mapping):
        raise PayloadError(wrapper_name, "must be an object")
    current = _snapshot(wrapper, f"{wrapper_name}.current")
    previous = _snapshot(wrapper, f"{wrapper_name}.previous")
    if not current:
        if not previous:
            raise PayloadError(f"{wrapper_name}.current", "must describe the post")
        return [_event(previous, UNPUBLISHED, f"{wrapper_name}.previous")]
    status = current.get("status")
    previous_status = previous.get("status")
    if status == "published":
        first_time = previous_status is not None and previous_status != "published"
        return [_event(current, PUBLISHED if first_time else UPDATED, f"{wrapper_name}.current")]
    if previous_status == "published":
        return [_event(current, UNPUBLISHED, f"{wrapper_name}.current")]
    return IgnoredEvent(f"{wrapper_name} status '{status}' is not published")


def _snapshot(wrapper: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    value = wrapper.get(path.rsplit(".", 1)[-1])
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(path, "must be an object")
    return value


def _event(post: Mapping[str, Any], action: str, path: str) -> SourceEvent:
    post_id = post.get("id")
    if not isinstance(post_id, str) or not post_id:
        raise PayloadError(f"{path}.id", "must be a non-empty string")
    image_url = _text(post, "feature_image", path)
    return SourceEvent(
        source=GHOST,
        kind=POST,
        action=action,
        source_id=post_id,
        title=_text(post, "title", path),
        url=_text(post, "url", path) or None,
        summary=_text(post, "custom_excerpt", path) or _text(post, "excerpt", path),
        content=_text(post, "html", path),
        content_format="html",
        tags=tuple(_tag_names(post.get("tags"), path)),
        image=EventImage(image_url, _text(post, "feature_image_alt", path)) if image_url else None,
    )


def _text(post: Mapping[str, Any], name: str, path: str) -> str:
    value = post.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{path}.{name}", "must be a string")
    return value


def _tag_names(tags: Any, path: str) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise PayloadError(f"{path}.tags", "must be a list")
    names: list[str] = []
    for tag in tags:
        if not isinstance(tag, Mapping):
            continue
        name = tag.get("name")
        # Ghost's internal tags start with '#' and are not meant for readers.
        if isinstance(name, str) and name and not name.startswith("#"):
            if tag.get("visibility", "public") == "public":
                names.append(name)
    return names
