"""The part of RFC 8941 Structured Field Values that message signatures need.

Parses Dictionaries, Inner Lists, Items and Parameters, and serialises Items and Inner
Lists back into their canonical form (the signature base is built from that form).
Every malformed input raises `StructuredFieldError`; nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeAlias

# Header values beyond this are refused before parsing; real signature fields are < 2 KB.
MAX_FIELD_LENGTH = 16_384
_MAX_INTEGER = 999_999_999_999_999

_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_ALPHA = _LCALPHA | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_KEY_FIRST = _LCALPHA | {"*"}
_KEY_REST = _LCALPHA | _DIGITS | frozenset("_-.*")
_TCHAR = _ALPHA | _DIGITS | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_REST = _TCHAR | frozenset(":/")
_BASE64_CHARS = _ALPHA | _DIGITS | frozenset("+/=")


class StructuredFieldError(ValueError):
    """The field value is not a valid structured field of the expected type."""


class Token(str):
    """A Structured Field Token, kept distinct from a String so it serialises bare."""

    __slots__ = ()


BareItem: TypeAlias = int | Decimal | str | Token | bytes | bool
Parameters: TypeAlias = dict[str, BareItem]


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    items: tuple[Item, ...]
    params: Parameters = field(default_factory=dict)


Member: TypeAlias = Item | InnerList


def parse_dictionary(text: str, *, reject_duplicate_keys: bool = True) -> dict[str, Member]:
    """Parse a Dictionary field value.

    RFC 8941 lets a repeated key overwrite the earlier one; for signatures that ambiguity
    is a forgery opportunity, so by default a repeated key is an error.
    """
    parser = _Parser(text)
    members: dict[str, Member] = {}
    parser.skip_spaces()
    if parser.at_end():
        return members
    while True:
        key = parser.parse_key()
        if parser.peek() == "=":
            parser.advance()
            member = parser.parse_item_or_inner_list()
        else:
            member = Item(True, parser.parse_parameters())
        if reject_duplicate_keys and key in members:
            raise StructuredFieldError(f"duplicate dictionary key {key!r}")
        members[key] = member
        parser.skip_ows()
        if parser.at_end():
            return members
        parser.expect(",")
        parser.skip_ows()
        if parser.at_end():
            raise StructuredFieldError("trailing comma in dictionary")


def parse_item(text: str) -> Item:
    parser = _Parser(text)
    parser.skip_spaces()
    item = parser.parse_item()
    parser.skip_spaces()
    if not parser.at_end():
        raise StructuredFieldError("unexpected characters after item")
    return item


class _Parser:
    __slots__ = ("text", "position")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise StructuredFieldError("field value must be text")
        if len(text) > MAX_FIELD_LENGTH:
            raise StructuredFieldError("field value too long")
        if not text.isascii():
            raise StructuredFieldError("field value must be ASCII")
        self.text = text.strip(" ")
        self.position = 0

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def advance(self) -> str:
        char = self.peek()
        self.position += 1
        return char

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise StructuredFieldError(f"expected {char!r} at offset {self.position}")
        self.position += 1

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.position += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t"):
            self.position += 1

    def parse_key(self) -> str:
        if self.peek() not in _KEY_FIRST:
            raise StructuredFieldError(f"invalid key at offset {self.position}")
        start = self.position
        self.position += 1
        while not self.at_end() and self.peek() in _KEY_REST:
            self.position += 1
        return self.text[start : self.position]

    def parse_parameters(self) -> Parameters:
        params: Parameters = {}
        while self.peek() == ";":
            self.advance()
            self.skip_spaces()
            key = self.parse_key()
            value: BareItem = True
            if self.peek() == "=":
                self.advance()
                value = self.parse_bare_item()
            params[key] = value
        return params

    def parse_item_or_inner_list(self) -> Member:
        if self.peek() == "(":
            return self.parse_inner_list()
        return self.parse_item()

    def parse_inner_list(self) -> InnerList:
        self.expect("(")
        items: list[Item] = []
        while not self.at_end():
            self.skip_spaces()
            if self.peek() == ")":
                self.advance()
                return InnerList(tuple(items), self.parse_parameters())
            items.append(self.parse_item())
            if self.peek() not in (" ", ")"):
                raise StructuredFieldError(f"expected space or ')' at offset {self.position}")
        raise StructuredFieldError("unterminated inner list")

    def parse_item(self) -> Item:
        value = self.parse_bare_item()
        return Item(value, self.parse_parameters())

    def parse_bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char in _DIGITS:
            return self.parse_number()
        if char == '"':
            return self.parse_string()
        if char == "*" or char in _ALPHA:
            return self.parse_token()
        if char == ":":
            return self.parse_byte_sequence()
        if char == "?":
            return self.parse_boolean()
        raise StructuredFieldError(f"unexpected {char!r} at offset {self.position}")

    def parse_number(self) -> int | Decimal:
        start = self.position
        if self.peek() == "-":
            self.advance()
        if self.peek() not in _DIGITS:
            raise StructuredFieldError("number without digits")
        is_decimal = False
        while not self.at_end():
            char = self.peek()
            if char in _DIGITS:
                self.advance()
            elif char == "." and not is_decimal:
                is_decimal = True
                self.advance()
            else:
                break
        literal = self.text[start : self.position]
        digits = literal.lstrip("-")
        if not is_decimal:
            if len(digits) > 15:
                raise StructuredFieldError("integer too long")
            return int(literal)
        whole, _, fraction = digits.partition(".")
        if len(whole) > 12 or not fraction or len(fraction) > 3:
            raise StructuredFieldError("invalid decimal")
        return Decimal(literal)

    def parse_string(self) -> str:
        self.expect('"')
        chars: list[str] = []
        while not self.at_end():
            char = self.advance()
            if char == "\\":
                escaped = self.advance()
                if escaped not in ('"', "\\"):
                    raise StructuredFieldError("invalid escape in string")
                chars.append(escaped)
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                raise StructuredFieldError("invalid character in string")
            else:
                chars.append(char)
        raise StructuredFieldError("unterminated string")

    def parse_token(self) -> Token:
        start = self.position
        self.advance()
        while not self.at_end() and self.peek() in _TOKEN_REST:
            self.advance()
        return Token(self.text[start : self.position])

    def parse_byte_sequence(self) -> bytes:
        self.expect(":")
        end = self.text.find(":", self.position)
        if end < 0:
            raise StructuredFieldError("unterminated byte sequence")
        encoded = self.text[self.position : end]
        self.position = end + 1
        if not set(encoded) <= _BASE64_CHARS:
            raise StructuredFieldError("invalid character in byte sequence")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise StructuredFieldError("invalid base64 in byte sequence") from error

    def parse_boolean(self) -> bool:
        self.expect("?")
        char = self.advance()
        if char == "1":
            return True
        if char == "0":
            return False
        raise StructuredFieldError("invalid boolean")


def serialize_bare_item(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _MAX_INTEGER:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        rounded = value.quantize(Decimal("0.001"))
        text = f"{rounded:f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    if not all(" " <= char <= "~" for char in value):
        raise StructuredFieldError("string contains characters that cannot be serialised")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_parameters(params: Parameters) -> str:
    parts = []
    for key, value in params.items():
        if value is True:
            parts.append(f";{key}")
        else:
            parts.append(f";{key}={serialize_bare_item(value)}")
    return "".join(parts)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_parameters(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    members = " ".join(serialize_item(item) for item in inner.items)
    return f"({members}){serialize_parameters(inner.params)}"
