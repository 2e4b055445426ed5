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


def collect_raw_header_fields(lines: Iterable[tuple[bytes, bytes]]) -> HeaderFields:
    """The same grouping straight from an ASGI server's raw (name, value) byte pairs,
    decoded as ISO-8859-1 like any HTTP field, without an intermediate list."""
    fields: HeaderFields = {}
    for name, value in lines:
        key = name.decode("latin-1").lower()
        decoded = value.decode("latin-1")
        existing = fields.get(key)
        if existing is None:
            fields[key] = [decoded]
        else:
            existing.append(decoded)
    return fields


def combined_field_value(fields: HeaderFields, name: str) -> str | None:
    """The field's lines trimmed and joined with ", " (RFC 9110 section 5.3), or None if absent."""
    lines = fields.get(name)
    if lines is None:
        return None
    if len(lines) == 1:
        return lines[0].strip(" \t")
    return ", ".join(line.strip(" \t") for line in lines)
