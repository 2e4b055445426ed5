"""RSS 2.0 and Atom 1.0 documents of an account's posts.

Both are built as element trees and serialized by ElementTree, so every text and attribute
is escaped by the serializer rather than by hand. Characters XML 1.0 cannot carry at all
(most C0 controls) are removed first: escaping cannot make them legal, and one of them in a
post would make the whole feed unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Final
from xml.etree import ElementTree

from federation.activitypub.timestamps import format_timestamp

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
RSS_MEDIA_TYPE: Final = "application/rss+xml"
ATOM_MEDIA_TYPE: Final = "application/atom+xml"
GENERATOR: Final = "fedirelay"

# The registry is process-wide; registering the conventional prefix is harmless to others.
ElementTree.register_namespace("atom", ATOM_NS)

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class FeedItem:
    item_id: str
    url: str
    title: str | None
    content_html: str
    published: datetime
    updated: datetime | None = None
    summary: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedChannel:
    title: str
    description: str
    page_url: str
    feed_url: str
    author: str
    language: str | None = None
    icon_url: str | None = None
    items: Sequence[FeedItem] = field(default_factory=tuple)


def xml_text(value: str) -> str:
    return _XML_ILLEGAL.sub("", value)


def _add(
    parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str
) -> ElementTree.Element:
    element = ElementTree.SubElement(
        parent, tag, {name: xml_text(value) for name, value in attributes.items()}
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def _newest(channel: FeedChannel) -> datetime | None:
    moments = [item.updated or item.published for item in channel.items]
    return max(moments) if moments else None


def _serialize(root: ElementTree.Element) -> bytes:
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _item_title(item: FeedItem) -> str:
    return item.title or ""


def build_rss(channel: FeedChannel) -> bytes:
    rss = ElementTree.Element("rss", {"version": "2.0"})
    head = _add(rss, "channel")
    _add(head, "title", channel.title)
    _add(head, "link", channel.page_url)
    _add(head, "description", channel.description)
    _add(head, f"{{{ATOM_NS}}}link", href=channel.feed_url, rel="self", type=RSS_MEDIA_TYPE)
    _add(head, "generator", GENERATOR)
    if channel.language:
        _add(head, "language", channel.language)
    newest = _newest(channel)
    if newest is not None:
        _add(head, "lastBuildDate", format_datetime(newest, usegmt=True))
    if channel.icon_url:
        image = _add(head, "image")
        _add(image, "url", channel.icon_url)
        _add(image, "title", channel.title)
        _add(image, "link", channel.page_url)
    for item in channel.items:
        entry = _add(head, "item")
        if item.title:
            _add(entry, "title", item.title)
        _add(entry, "link", item.url)
        _add(entry, "guid", item.item_id, isPermaLink="false")
        _add(entry, "pubDate", format_datetime(item.published, usegmt=True))
        _add(entry, "description", item.content_html)
        for tag in item.tags:
            _add(entry, "category", tag)
    return _serialize(rss)


def build_atom(channel: FeedChannel) -> bytes:
    # Unprefixed names plus an explicit xmlns: ElementTree's default_namespace option
    # refuses the unqualified attributes Atom uses.
    feed = ElementTree.Element("feed", {"xmlns": ATOM_NS})
    _add(feed, "id", channel.feed_url)
    _add(feed, "title", channel.title)
    _add(feed, "subtitle", channel.description)
    newest = _newest(channel)
    # Atom requires <updated>; an empty feed has had no update, so its epoch stands in.
    _add(feed, "updated", format_timestamp(newest) if newest else "1970-01-01T00:00:00Z")
    _add(feed, "link", href=channel.page_url, rel="alternate", type="text/html")
    _add(feed, "link", href=channel.feed_url, rel="self", type=ATOM_MEDIA_TYPE)
    author = _add(feed, "author")
    _add(author, "name", channel.author)
    _add(author, "uri", channel.page_url)
    _add(feed, "generator", GENERATOR)
    if channel.icon_url:
        _add(feed, "icon", channel.icon_url)
    for item in channel.items:
        entry = _add(feed, "entry")
        _add(entry, "id", item.item_id)
        _add(entry, "title", _item_title(item), type="text")
        _add(entry, "link", href=item.url, rel="alternate", type="text/html")
        _add(entry, "published", format_timestamp(item.published))
        _add(entry, "updated", format_timestamp(item.updated or item.published))
        if item.summary:
            _add(entry, "summary", item.summary, type="text")
        _add(entry, "content", item.content_html, type="html")
        for label in item.tags:
            _add(entry, "category", term=label)
    return _serialize(feed)
