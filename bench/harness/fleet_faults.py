"""Faults a fake server can be told to show: error statuses, slowness, refusal."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace


class FaultKind(enum.StrEnum):
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    GONE = "gone"
    SLOW_BODY = "slow_body"
    REFUSE = "refuse"
    FAIL_FIRST = "fail_first"


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault description; :meth:`Fleet.inject` turns it into per-host active faults.

    ``inbox_only`` limits the fault to inbox POSTs, leaving actor documents and
    WebFinger served normally (a refusal always affects the whole host).
    """

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    byte_interval: float = 1.0
    body_bytes: int = 16
    first_n: int = 0
    inbox_only: bool = False

    @classmethod
    def server_error(cls, status: int = 500, inbox_only: bool = False) -> Fault:
        return cls(FaultKind.SERVER_ERROR, status=status, inbox_only=inbox_only)

    @classmethod
    def rate_limited(cls, retry_after: int | str = 30, inbox_only: bool = False) -> Fault:
        return cls(
            FaultKind.RATE_LIMITED, status=429, retry_after=str(retry_after), inbox_only=inbox_only
        )

    @classmethod
    def gone(cls, inbox_only: bool = False) -> Fault:
        return cls(FaultKind.GONE, status=410, inbox_only=inbox_only)

    @classmethod
    def slow_body(
        cls,
        byte_interval: float = 1.0,
        body_bytes: int = 16,
        inbox_only: bool = False,
        status: int = 202,
    ) -> Fault:
        """Answer (the handler's status, or ``status`` when it is an error), then send the
        body one byte per ``byte_interval``."""
        return cls(
            FaultKind.SLOW_BODY,
            status=status,
            byte_interval=byte_interval,
            body_bytes=body_bytes,
            inbox_only=inbox_only,
        )

    @classmethod
    def refuse(cls) -> Fault:
        """Stop listening and drop open connections: clients see connection refused."""
        return cls(FaultKind.REFUSE)

    @classmethod
    def fail_first(cls, n: int, status: int = 500, inbox_only: bool = False) -> Fault:
        """Answer ``status`` to the next ``n`` requests, then recover."""
        return cls(FaultKind.FAIL_FIRST, status=status, first_n=n, inbox_only=inbox_only)

    def with_status(self, status: int) -> Fault:
        return replace(self, status=status)


@dataclass(eq=False, slots=True)
class ActiveFault:
    """A fault in force on one host between two monotonic instants."""

    fault: Fault
    starts_at: float
    ends_at: float | None
    remaining: int = 0
    hits: int = field(default=0)

    def in_force(self, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        if moment < self.starts_at:
            return False
        if self.ends_at is not None and moment >= self.ends_at:
            return False
        return not (self.fault.kind is FaultKind.FAIL_FIRST and self.remaining <= 0)

    def expired(self, now: float) -> bool:
        if self.ends_at is not None and now >= self.ends_at:
            return True
        return self.fault.kind is FaultKind.FAIL_FIRST and self.remaining <= 0

    def applies_to(self, is_inbox_post: bool) -> bool:
        return is_inbox_post or not self.fault.inbox_only
