"""Structured Field Values (RFC 9651, which obsoletes RFC 8941) as message signatures and
digests use them, parsed and serialised by the `http-sf` library.

The only module that imports `http_sf`: it turns the library's tuples into typed `Item` and
`InnerList` values, and adds what the signature code relies on: field values are ASCII
and bounded in length, a Dictionary that repeats a key is refused (RFC 9651 lets the last
one win and http-sf keeps it silently; for a signature label or a digest algorithm that
ambiguity is a forgery opportunity), and every malformed input raises
`StructuredFieldError`, nothing else. http-sf replaced a hand-written parser and is the
cheaper of the two: ~40 against ~51 us to parse the three fields of a signed inbox POST,
~104 against ~112 us per verified RFC 9421 POST (bench/signature_verification_cost.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias, cast

import http_sf
from http_sf import Token
from http_sf.innerlist import ser_innerlist
from http_sf.item import ser_item
from http_sf.types import BareItemType, DictionaryType, ItemOrInnerListType, ItemType

__all__ = [
    "MAX_FIELD_LENGTH",
    "BareItem",
    "InnerList",
    "Item",
    "Member",
    "Parameters",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "serialize_inner_list",
    "serialize_item",
]

# Header values beyond this are refused before parsing; real signature fields are < 2 KB.
MAX_FIELD_LENGTH = 16_384

BareItem: TypeAlias = BareItemType
Parameters: TypeAlias = dict[str, BareItem]


class StructuredFieldError(ValueError):
    """The field value is not a valid structured field of the expected type."""


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    items: tuple[Item, ...]
    params: Parameters = field(default_factory=dict)


Member: TypeAlias = Item | InnerList


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse a Dictionary field value; a repeated key is an error."""
    if len(text) > MAX_FIELD_LENGTH:
        raise StructuredFieldError("field value too long")
    if not text.isascii():
        raise StructuredFieldError("field value must be ASCII")
    try:
        parsed = http_sf.parse(
            text.encode("ascii"), tltype="dictionary", on_duplicate_key=_refuse_repeated_key
        )
    except http_sf.StructuredFieldError as error:
        raise StructuredFieldError(str(error)) from error
    # http-sf types `parse` for every top-level type; "dictionary" always yields a dict.
    return {key: _member(value) for key, value in cast(DictionaryType, parsed).items()}


def _refuse_repeated_key(key: str, kind: str) -> None:
    # Parameters may repeat (the last wins, as RFC 9651 says); Dictionary keys may not.
    if kind == "dictionary":
        raise StructuredFieldError(f"duplicate dictionary key {key!r}")


def _member(parsed: ItemOrInnerListType) -> Member:
    if not isinstance(parsed, tuple):
        return InnerList(tuple(map(_item, parsed))) if isinstance(parsed, list) else Item(parsed)
    value, params = parsed
    if isinstance(value, list):
        return InnerList(tuple(map(_item, value)), params)
    return Item(value, params)


def _item(parsed: ItemType) -> Item:
    if isinstance(parsed, tuple):
        return Item(parsed[0], parsed[1])
    return Item(parsed)


def serialize_item(item: Item) -> str:
    try:
        return ser_item((item.value, item.params))
    except ValueError as error:
        raise StructuredFieldError(f"item cannot be serialised: {error}") from error


def serialize_inner_list(inner: InnerList) -> str:
    items: list[ItemType] = [(item.value, item.params) for item in inner.items]
    try:
        return ser_innerlist((items, inner.params))
    except ValueError as error:
        raise StructuredFieldError(f"inner list cannot be serialised: {error}") from error
