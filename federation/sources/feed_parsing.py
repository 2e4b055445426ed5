"""Reading RSS 2.0 and Atom 1.0 feeds a CMS publishes, for relays that poll instead of
receiving webhooks.

Parsing goes through defusedxml, which refuses entity expansion, external entities and DTDs,
so a hostile feed cannot blow up memory or make the relay read local files. An entry is
identified by its guid (RSS) or id (Atom), falling back to its link; its `digest` covers
what a post is built from, so an edit of the text, title, link or tags shows as a changed
digest while a feed merely being re-served does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from xml.etree.ElementTree import Element, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from federation.activitypub.timestamps import parse_timestamp
from federation.rendering.html_sanitizer import escape_text

ATOM: Final = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED: Final = "{http://purl.org/rss/1.0/modules/content/}encoded"
DUBLIN_CORE_DATE: Final = "{http://purl.org/dc/elements/1.1/}date"
MAX_ENTRY_ID_LENGTH: Final = 512


class FeedUnreadable(ValueError):
    """The document is not a well-formed, safe RSS 2.0 or Atom 1.0 feed."""


@dataclass(frozen=True, slots=True)
class FeedEntryData:
    entry_id: str
    url: str | None
    title: str | None
    content_html: str
    summary: str | None
    published: datetime | None
    updated: datetime | None
    tags: tuple[str, ...]

    @property
    def digest(self) -> str:
        material = json.dumps(
            [self.url, self.title, self.content_html, self.summary, list(self.tags)],
            ensure_ascii=False,
        )
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    kind: str  # rss | atom
    title: str | None
    entries: tuple[FeedEntryData, ...]


def parse_feed(body: bytes) -> ParsedFeed:
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as error:
        raise FeedUnreadable(f"not a readable XML feed: {error}") from error
    if root.tag == "rss":
        return _parse_rss(root)
    if root.tag == f"{ATOM}feed":
        return _parse_atom(root)
    raise FeedUnreadable(f"root element {root.tag!r} is neither RSS 2.0 nor Atom 1.0")


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    stripped = element.text.strip()
    return stripped or None


def _rss_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _iso_date(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _iso_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _rss_items(channel: Element) -> Iterator[FeedEntryData]:
    for item in channel.iter("item"):
        link = _text(item.find("link"))
        entry_id = _text(item.find("guid")) or link
        if not entry_id or len(entry_id) > MAX_ENTRY_ID_LENGTH:
            continue
        description = _text(item.find("description"))
        content = _text(item.find(CONTENT_ENCODED)) or description or ""
        published = _rss_date(_text(item.find("pubDate"))) or _iso_date(
            _text(item.find(DUBLIN_CORE_DATE))
        )
        yield FeedEntryData(
            entry_id=entry_id,
            url=link,
            title=_text(item.find("title")),
            content_html=content,
            summary=description if content != description else None,
            published=published,
            updated=None,
            tags=tuple(text for text in (_text(c) for c in item.findall("category")) if text),
        )


def _parse_rss(root: Element) -> ParsedFeed:
    channel = root.find("channel")
    if channel is None:
        raise FeedUnreadable("RSS document without a channel")
    return ParsedFeed("rss", _text(channel.find("title")), tuple(_rss_items(channel)))


def _atom_link(entry: Element) -> str | None:
    fallback = None
    for link in entry.findall(f"{ATOM}link"):
        href = link.get("href")
        if not href:
            continue
        if link.get("rel", "alternate") == "alternate":
            return href.strip()
        fallback = fallback or href.strip()
    return fallback


def _atom_html(element: Element | None) -> str | None:
    """Atom text constructs as HTML: `text` is escaped, `xhtml` is the inner markup."""
    if element is None:
        return None
    kind = element.get("type", "text")
    if kind == "xhtml":
        wrapper = next(iter(element), None)
        if wrapper is None:
            return None
        inner = (wrapper.text or "") + "".join(
            tostring(child, encoding="unicode") for child in wrapper
        )
        return inner.strip() or None
    text = _text(element)
    if text is None or kind == "html":
        return text
    return "<p>" + escape_text(text) + "</p>"


def _atom_entries(root: Element) -> Iterator[FeedEntryData]:
    for entry in root.iter(f"{ATOM}entry"):
        link = _atom_link(entry)
        entry_id = _text(entry.find(f"{ATOM}id")) or link
        if not entry_id or len(entry_id) > MAX_ENTRY_ID_LENGTH:
            continue
        summary = _atom_html(entry.find(f"{ATOM}summary"))
        content = _atom_html(entry.find(f"{ATOM}content")) or summary or ""
        updated = _iso_date(_text(entry.find(f"{ATOM}updated")))
        yield FeedEntryData(
            entry_id=entry_id,
            url=link,
            title=_text(entry.find(f"{ATOM}title")),
            content_html=content,
            summary=summary if content != summary else None,
            published=_iso_date(_text(entry.find(f"{ATOM}published"))) or updated,
            updated=updated,
            tags=tuple(
                term for term in (c.get("term") for c in entry.findall(f"{ATOM}category")) if term
            ),
        )


def _parse_atom(root: Element) -> ParsedFeed:
    return ParsedFeed("atom", _text(root.find(f"{ATOM}title")), tuple(_atom_entries(root)))
