"""The outcome of a fault drill: named checks, a verdict, and the figures behind it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DrillReport:
    name: str
    command: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    error: str | None = None

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        return bool(ok)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c["ok"] for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": "pass" if self.passed else "fail",
            "command": self.command,
            "seconds": round(time.monotonic() - self.started, 1),
            "checks": self.checks,
            "figures": self.figures,
            "error": self.error,
        }

    def failures(self) -> list[str]:
        failed = [f"{c['name']}: {c['detail']}" for c in self.checks if not c["ok"]]
        if self.error:
            failed.append(f"error: {self.error}")
        return failed
