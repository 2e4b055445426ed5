"""The CMS webhook's JSON schema (also the admin API's post body), and its answers.

Shown in the OpenAPI documentation with examples; `to_source_event` turns a validated body into
the relay's source-independent event.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

from federation.sources.events import POST, EventImage, SourceEvent

LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)*$"
CMS_EVENTS = ("published", "updated", "unpublished")

_PUBLISHED_EXAMPLE: dict[str, Any] = {
    "event": "published",
    "source_id": "post-2024-05-hello",
    "title": "Hello, fediverse",
    "url": "https://blog.example.com/hello",
    "summary": "Our blog now federates.",
    "content": "We now publish **every post** to the fediverse.",
    "content_format": "markdown",
    "tags": ["Fediverse", "Open Source"],
    "image": {"url": "https://blog.example.com/hello.png", "alt": "A waving hand"},
    "language": "en",
    "accounts": ["blog"],
}
_UPDATED_EXAMPLE: dict[str, Any] = {
    **_PUBLISHED_EXAMPLE,
    "event": "updated",
    "title": "Hello again, fediverse",
}
_UNPUBLISHED_EXAMPLE: dict[str, Any] = {"event": "unpublished", "source_id": "post-2024-05-hello"}


class ImageModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="Absolute URL of the image.")
    alt: str = Field("", max_length=1500, description="Alternative text for screen readers.")
    media_type: str | None = Field(
        None, max_length=100, pattern=r"^image/[\w.+-]+$", description="e.g. image/png."
    )


class PostContent(BaseModel):
    """What a post says; shared by the CMS webhook, the admin API and previews."""

    title: str = Field("", max_length=500)
    url: AnyHttpUrl | None = Field(None, description="Canonical URL of the original.")
    summary: str = Field("", max_length=5000, description="Short plain-text summary.")
    content: str = Field("", max_length=500_000, description="Body, HTML or Markdown.")
    content_format: Literal["html", "markdown", "text"] = "html"
    tags: list[str] = Field(default_factory=list, max_length=30, description="Become hashtags.")
    image: ImageModel | None = None
    language: str | None = Field(None, max_length=16, pattern=LANGUAGE_PATTERN)
    content_warning: str | None = Field(
        None, max_length=500, description="Shown before the post; marks it sensitive."
    )
    sensitive: bool = Field(False, description="Hide the image behind a warning.")
    scheduled_at: AwareDatetime | None = Field(
        None, description="Publish later (ISO 8601 with offset); the past means now."
    )
    accounts: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Handles to publish on; empty means every account whose routing accepts "
        "the event.",
    )
    dry_run: bool = Field(
        False, description="Answer with what would be published, without publishing."
    )
    pinned: bool | None = Field(
        None,
        description="Pin the post to the account's profile (featured posts); false unpins it; "
        "absent leaves it as it is.",
    )


class CmsEvent(PostContent):
    """A CMS webhook body: a post was published, updated or unpublished."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_PUBLISHED_EXAMPLE, _UPDATED_EXAMPLE, _UNPUBLISHED_EXAMPLE]}
    )

    event: Literal["published", "updated", "unpublished"]
    source_id: str = Field(
        min_length=1, max_length=255, description="The CMS's stable id of the post."
    )


class PostRequest(PostContent):
    """An admin API post: published now (or at `scheduled_at`) on the listed accounts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Hello, fediverse",
                    "content": "Our first post.",
                    "url": "https://example.com/hello",
                    "accounts": ["blog"],
                }
            ]
        }
    )

    source_id: str | None = Field(
        None, min_length=1, max_length=255, description="Stable id; generated when omitted."
    )


def source_event_of(
    body: PostContent, *, source: str, action: str, source_id: str | None = None
) -> SourceEvent:
    image = (
        EventImage(str(body.image.url), body.image.alt, body.image.media_type)
        if body.image
        else None
    )
    return SourceEvent(
        source=source,
        kind=POST,
        action=action,
        source_id=source_id or str(uuid.uuid4()),
        title=body.title,
        url=str(body.url) if body.url else None,
        summary=body.summary,
        content=body.content,
        content_format=body.content_format,
        tags=tuple(body.tags),
        image=image,
        language=body.language,
        content_warning=body.content_warning,
        sensitive=body.sensitive,
        scheduled_at=body.scheduled_at,
        accounts=tuple(handle.lower() for handle in body.accounts),
        pinned=body.pinned,
    )


def cms_source_event(body: CmsEvent) -> SourceEvent:
    return source_event_of(body, source="cms", action=body.event, source_id=body.source_id)


class WebhookAnswer(BaseModel):
    status: str = Field(examples=["accepted"])
    event_id: int | None = None
    reason: str | None = None
    result: dict[str, Any] | None = None


def inline_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` substituted in place, for `openapi_extra`
    (endpoints that must authenticate the raw body before they parse it)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return substitute(definitions[reference.removeprefix("#/$defs/")])
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(item) for item in node]
        return node

    result: dict[str, Any] = substitute(schema)
    return result
