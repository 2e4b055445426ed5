"""Collection documents (outbox, followers, following, featured) and their pages.

Paging is by cursor, not offset, so a page stays stable while new items arrive: the
first page holds the newest items, `next` goes to older ones (`max_id`), `prev` to newer
ones (`min_id`). Cursors are the relay's internal row ids, which only grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from federation.activitypub.timestamps import format_timestamp
from federation.activitypub.vocabulary import AS_CONTEXT

PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page a client asked for: the newest items, or those older than `max_id`, or
    those newer than `min_id`."""

    max_id: int | None = None
    min_id: int | None = None
    size: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class PageItem:
    cursor: int
    item: Any


def parse_cursor(value: str | None) -> int | None:
    """A cursor from a query string; anything that is not a small non-negative integer is
    treated as absent rather than an error, as crawlers send all sorts of things."""
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def page_url(collection_id: str, **cursor: int) -> str:
    return f"{collection_id}?{urlencode({'page': 'true', **cursor})}"


def ordered_collection(
    collection_id: str, total: int, *, first: str | None = None, last: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        document["first"] = first
    if last is not None:
        document["last"] = last
    return document


def paged_collection(collection_id: str, total: int) -> dict[str, Any]:
    """The collection head: counts and where paging starts (newest) and ends (oldest)."""
    return ordered_collection(
        collection_id,
        total,
        first=page_url(collection_id),
        last=page_url(collection_id, min_id=0),
    )


def collection_page(
    collection_id: str,
    request: PageRequest,
    items: Sequence[PageItem],
    *,
    total: int | None = None,
    has_older: bool,
    has_newer: bool,
) -> dict[str, Any]:
    """One page; `items` newest first. `has_older`/`has_newer` decide next/prev links."""
    if request.min_id is not None:
        page_id = page_url(collection_id, min_id=request.min_id)
    elif request.max_id is not None:
        page_id = page_url(collection_id, max_id=request.max_id)
    else:
        page_id = page_url(collection_id)
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": [entry.item for entry in items],
    }
    if total is not None:
        document["totalItems"] = total
    if items and has_older:
        document["next"] = page_url(collection_id, max_id=items[-1].cursor)
    if items and has_newer:
        document["prev"] = page_url(collection_id, min_id=items[0].cursor)
    return document


def embedded_item(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as an item of a collection: same JSON without its own @context."""
    return {key: value for key, value in document.items() if key != "@context"}


def inline_collection(collection_id: str, items: Sequence[Any]) -> dict[str, Any]:
    """A small collection served whole (featured posts)."""
    document = ordered_collection(collection_id, len(items))
    document["orderedItems"] = list(items)
    return document


def tombstone(object_id: str, former_type: str, deleted: datetime | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": object_id,
        "type": "Tombstone",
        "formerType": former_type,
    }
    if deleted is not None:
        document["deleted"] = format_timestamp(deleted)
    return document
