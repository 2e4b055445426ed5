"""Normalisation of request header fields for signature processing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

# Either a plain mapping or the raw (name, value) lines, so repeated fields survive.
HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]
HeaderFields: TypeAlias = dict[str, list[str]]


def collect_header_fields(headers: HeaderInput) -> HeaderFields:
    """Group field lines by lower-cased name, keeping their order."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    fields: HeaderFields = {}
    for name, value in pairs:
        fields.setdefault(name.lower(), []).append(value)
    return fields


def combined_field_value(fields: HeaderFields, name: str) -> str | None:
    """The field's lines trimmed and joined with ", " (RFC 9110 section 5.3), or None if absent."""
    lines = fields.get(name)
    if lines is None:
        return None
    return ", ".join(line.strip(" \t") for line in lines)
