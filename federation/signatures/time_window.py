"""The time window in which a request signature is accepted, shared by both signature schemes.

Servers' clocks drift, so a signature is accepted from one hour in the future to one hour
in the past. A signer may shorten that with an explicit expiry, or lengthen it, but never
beyond twelve hours after creation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from federation.signatures.errors import SignatureMalformed, SignatureStale

CLOCK_SKEW_SECONDS: Final = 3600
MAX_VALIDITY_SECONDS: Final = 12 * 3600

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_WEEKDAYS: Final = frozenset({"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})


def check_time_window(created: float, expires: float | None, now: float) -> None:
    if created > now + CLOCK_SKEW_SECONDS:
        raise SignatureStale("signature was created in the future")
    if expires is None:
        if now - created > CLOCK_SKEW_SECONDS:
            raise SignatureStale("signature is too old")
        return
    if expires < created:
        raise SignatureMalformed("signature expires before it was created")
    if now > min(expires, created + MAX_VALIDITY_SECONDS):
        raise SignatureStale("signature has expired")


def format_http_date(timestamp: float) -> str:
    """IMF-fixdate, the only `Date` format senders should produce (RFC 9110 section 5.6.7)."""
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    weekday = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[moment.weekday()]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[
        moment.month - 1
    ]
    return f"{weekday}, {moment.day:02d} {month} {moment.year:04d} {moment:%H:%M:%S} GMT"


def parse_http_date(value: str) -> float:
    """Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into a Unix timestamp.

    Written out by hand because `strptime` depends on the process locale and
    `email.utils` accepts far more than HTTP allows.
    """
    parts = value.strip().split(" ")
    if len(parts) != 6 or parts[5] != "GMT" or not parts[0].endswith(","):
        raise SignatureMalformed("Date is not an IMF-fixdate")
    weekday, day, month, year, clock = parts[0][:-1], parts[1], parts[2], parts[3], parts[4]
    time_parts = clock.split(":")
    numbers = [day, year, *time_parts]
    if (
        weekday not in _WEEKDAYS
        or month not in _MONTHS
        or len(day) != 2
        or len(year) != 4
        or len(time_parts) != 3
        or any(len(part) != 2 for part in time_parts)
        or not all(number.isascii() and number.isdigit() for number in numbers)
    ):
        raise SignatureMalformed("Date is not an IMF-fixdate")
    try:
        moment = datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(time_parts[0]),
            int(time_parts[1]),
            int(time_parts[2]),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise SignatureMalformed("Date is not a valid calendar time") from error
    return moment.timestamp()
