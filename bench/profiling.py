"""Sampling profiles of running relay processes, for finding why a target was missed.

``py-spy record --pid`` attaches to a process for the measured window only (start-up and
imports stay out of the profile) and writes collapsed stacks; :func:`hot_spots` folds them
into the functions that use the CPU, idle waits left out.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_IDLE_FRAMES = (
    "select (selectors.py",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "wait (threading.py",
    "Condition.wait",
)


def py_spy_path() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


@contextlib.contextmanager
def sampled(pid: int | None, output: Path | None, rate: int = 200) -> Iterator[None]:
    """Record ``pid`` with py-spy while the block runs (no-op when either is None)."""
    if pid is None or output is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(  # noqa: S603
        [py_spy_path(), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
         "--format", "raw", "--output", str(output)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(10)


@dataclass(frozen=True, slots=True)
class HotSpots:
    samples: int
    busy_samples: int
    self_share: list[tuple[str, float]]
    inclusive_share: list[tuple[str, float]]

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "busy_share": round(self.busy_samples / self.samples, 3) if self.samples else 0.0,
            "self": [[frame, round(share, 3)] for frame, share in self.self_share],
            "inclusive": [[frame, round(share, 3)] for frame, share in self.inclusive_share],
        }


def hot_spots(raw_profile: Path, top: int = 20, contains: str = "") -> HotSpots:
    """Shares of busy samples per frame: where the CPU went (own time and inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = idle = 0
    for line in raw_profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in _IDLE_FRAMES):
            idle += count
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            if contains in frame:
                inclusive[frame] += count
    busy = max(samples - idle, 1)
    return HotSpots(
        samples,
        samples - idle,
        [(frame, count / busy) for frame, count in own.most_common(top)],
        [(frame, count / busy) for frame, count in inclusive.most_common(top)],
    )
