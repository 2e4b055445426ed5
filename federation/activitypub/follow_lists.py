"""Follow lists in Mastodon's own CSV format, and the Follow activity the relay sends.

Mastodon exports the accounts one follows as `following_accounts.csv` with the header
`Account address,Show boosts,Notify on new posts,Languages` and one `user@domain` per row
(booleans as `true`/`false`, languages comma-joined); its importer also takes files without
that header, reading the first column. Exports here use the same shape, so a list can move
between the relay and any Mastodon server.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from federation.activitypub.account_addresses import AccountAddress, InvalidAddress, parse_address
from federation.activitypub.vocabulary import AS_CONTEXT

MASTODON_HEADER: Final = ("Account address", "Show boosts", "Notify on new posts", "Languages")
MAX_IMPORT_ROWS: Final = 10_000


@dataclass(frozen=True, slots=True)
class ListRow:
    address: str
    show_boosts: bool = True
    notify: bool = False
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedList:
    addresses: tuple[AccountAddress, ...]
    # (line number, text, reason) of rows that could not be read.
    rejected: tuple[tuple[int, str, str], ...]


def write_follow_list(rows: Iterable[ListRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MASTODON_HEADER)
    for row in rows:
        writer.writerow(
            [
                row.address,
                "true" if row.show_boosts else "false",
                "true" if row.notify else "false",
                ", ".join(row.languages),
            ]
        )
    return buffer.getvalue()


def read_follow_list(text: str, *, max_rows: int = MAX_IMPORT_ROWS) -> ParsedList:
    """Addresses from a Mastodon follow list, in order, without duplicates."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    addresses: list[AccountAddress] = []
    seen: set[str] = set()
    rejected: list[tuple[int, str, str]] = []
    for line_number, cells in enumerate(reader, start=1):
        if not cells or not cells[0].strip():
            continue
        first = cells[0].strip()
        if line_number == 1 and first.lower() == MASTODON_HEADER[0].lower():
            continue
        if len(addresses) >= max_rows:
            rejected.append((line_number, first, f"more than {max_rows} rows"))
            break
        try:
            address = parse_address(first)
        except InvalidAddress as error:
            rejected.append((line_number, first, str(error)))
            continue
        key = str(address).lower()
        if key not in seen:
            seen.add(key)
            addresses.append(address)
    return ParsedList(tuple(addresses), tuple(rejected))


def follow_activity(activity_id: str, actor: str, followed: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": "Follow",
        "actor": actor,
        "object": followed,
    }
