"""An event rendered for one account: the Note (or Article) exactly as it will be published.

The body comes from the account's template for the event kind; the relay then appends the
canonical link and hashtag links, sanitizes the whole, and shortens the body (never the link)
to the account's length limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from federation.activitypub.post_activities import POST_CONTEXT
from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.vocabulary import PUBLIC
from federation.rendering.hashtags import Hashtag, hashtags
from federation.rendering.html_sanitizer import escape_text, html_to_text, sanitize_html
from federation.rendering.length import fit_html, plain_length
from federation.rendering.source_content import content_html, excerpt, plain_text
from federation.rendering.templates import render_template, template_context, template_source
from federation.sources.events import EventImage, SourceEvent

_PARAGRAPH_SEPARATOR = 2  # html_to_text puts a blank line between paragraphs
_IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
}


@dataclass(frozen=True, slots=True)
class RenderingAccount:
    """What rendering needs to know about the publishing account."""

    handle: str
    actor: str
    followers: str
    object_type: str = "Note"
    max_post_length: int = 500
    language: str | None = None
    templates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedPost:
    document: dict[str, Any]
    plain_text: str
    length: int
    limit: int
    truncated: bool


def render_post(
    event: SourceEvent,
    account: RenderingAccount,
    *,
    object_id: str,
    published: datetime,
    base_url: str,
) -> RenderedPost:
    tags = hashtags(event.tags, base_url)
    if account.object_type == "Article":
        body = content_html(event.content, event.content_format) or _template_body(event, account)
        content, truncated = _compose(body, event.url, tags), False
    else:
        body = _template_body(event, account)
        content, truncated = _fit(body, event.url, tags, account.max_post_length)
    document = _document(event, account, object_id, published, content, tags)
    text = html_to_text(content)
    return RenderedPost(document, text, len(text), account.max_post_length, truncated)


def _template_body(event: SourceEvent, account: RenderingAccount) -> str:
    source = template_source(event.kind, account.templates)
    return sanitize_html(render_template(source, template_context(event, account.handle))).strip()


def _link_paragraph(url: str | None, body: str) -> str:
    if not url or f'href="{escape_text(url)}"' in body:
        return ""
    return f'<p><a href="{escape_text(url)}">{escape_text(url)}</a></p>'


def _hashtag_paragraph(tags: list[Hashtag]) -> str:
    if not tags:
        return ""
    return "<p>" + " ".join(tag.as_link() for tag in tags) + "</p>"


def _compose(body: str, url: str | None, tags: list[Hashtag]) -> str:
    return sanitize_html(body + _link_paragraph(url, body) + _hashtag_paragraph(tags))


def _fit(body: str, url: str | None, tags: list[Hashtag], limit: int) -> tuple[str, bool]:
    composed = _compose(body, url, tags)
    if plain_length(composed) <= limit:
        return composed, False
    # Shorten the body first; drop hashtags from the end only if the link alone needs room.
    kept_tags = list(tags)
    while True:
        tail = _link_paragraph(url, body) + _hashtag_paragraph(kept_tags)
        tail_length = plain_length(tail) + (_PARAGRAPH_SEPARATOR if tail else 0)
        budget = limit - tail_length
        if budget >= 1 or not kept_tags:
            break
        kept_tags.pop()
    shortened, _ = fit_html(body, max(budget, 1))
    return sanitize_html(shortened + tail), True


def _media_type(url: str) -> str | None:
    path = url.split("?", 1)[0].split("#", 1)[0]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _IMAGE_TYPES.get(extension)


def _attachment(image: EventImage) -> dict[str, Any]:
    attachment: dict[str, Any] = {"type": "Image"}
    media_type = image.media_type or _media_type(image.url)
    if media_type:
        attachment["mediaType"] = media_type
    attachment["url"] = image.url
    attachment["name"] = plain_text(image.alt)
    return attachment


def _document(
    event: SourceEvent,
    account: RenderingAccount,
    object_id: str,
    published: datetime,
    content: str,
    tags: list[Hashtag],
) -> dict[str, Any]:
    is_article = account.object_type == "Article"
    document: dict[str, Any] = {
        "@context": POST_CONTEXT,
        "id": object_id,
        "type": "Article" if is_article else "Note",
        "attributedTo": account.actor,
        "published": format_timestamp(published),
        "url": event.url or object_id,
        "to": [PUBLIC],
        "cc": [account.followers],
    }
    warning = plain_text(event.content_warning or "")
    if is_article:
        document["name"] = plain_text(event.title)
        readable = plain_text(event.summary) or excerpt(html_to_text(content))
        document["summary"] = warning or readable
    elif warning:
        document["summary"] = warning
    document["sensitive"] = bool(warning) or event.sensitive
    document["content"] = content
    language = event.language or account.language
    if language:
        document["contentMap"] = {language: content}
    document["tag"] = [tag.as_object() for tag in tags]
    document["attachment"] = [_attachment(event.image)] if event.image else []
    return document
