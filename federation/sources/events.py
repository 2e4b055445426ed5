"""What a webhook or a poll tells the relay, in one shape whatever the source.

Parsers of the CMS, Ghost, Forgejo/Gitea and GitHub payloads produce `SourceEvent`s; routing,
rendering and the post lifecycle only ever see this shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

# Kinds of event, each with its own default template.
POST: Final = "post"
RELEASE: Final = "release"
TAG: Final = "tag"
STAR: Final = "star"
STAR_MILESTONE: Final = "star_milestone"
EVENT_KINDS: Final = (POST, RELEASE, TAG, STAR, STAR_MILESTONE)

# What happened to the thing at the source.
PUBLISHED: Final = "published"
UPDATED: Final = "updated"
UNPUBLISHED: Final = "unpublished"
ACTIONS: Final = (PUBLISHED, UPDATED, UNPUBLISHED)

SOURCES: Final = ("cms", "ghost", "forgejo", "github", "api")
CONTENT_FORMATS: Final = ("html", "markdown", "text")


@dataclass(frozen=True, slots=True)
class EventImage:
    url: str
    alt: str = ""
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One thing to publish, update or withdraw, identified by (source, source_id)."""

    source: str
    kind: str
    action: str
    source_id: str
    title: str = ""
    url: str | None = None
    summary: str = ""
    content: str = ""
    content_format: str = "html"
    tags: tuple[str, ...] = ()
    image: EventImage | None = None
    language: str | None = None
    content_warning: str | None = None
    sensitive: bool = False
    scheduled_at: datetime | None = None
    # Explicit target handles; empty means "every account whose routing accepts it".
    accounts: tuple[str, ...] = ()
    repository: str | None = None
    tag_name: str | None = None
    prerelease: bool = False
    stars: int | None = None
    actor_name: str | None = None
    # Pin to (True) or unpin from (False) the profile's featured posts; None leaves it alone.
    pinned: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PayloadError(ValueError):
    """The payload violates the source's schema; `field` names the offending member."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    """A well-formed delivery the relay deliberately does nothing with."""

    reason: str


ParsedWebhook = list[SourceEvent] | IgnoredEvent
