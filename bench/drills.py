"""`make drills`: every fault drill and the API fuzzing, each with a pass/fail verdict.

Writes ``bench/results/drills.json`` and regenerates the results table in
``docs/reliability.md`` between its markers. Bounded to about 10 minutes; ``--quick`` runs
smaller sizes, ``--only NAME`` one drill. Exits non-zero when any drill fails.

    python -m bench.drills [--quick] [--only kill]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import drill_fanout_faults, fuzz_api

RESULTS = Path(__file__).parent / "results"
DOC = Path(__file__).parent.parent / "docs" / "reliability.md"
START, END = "<!-- drills:start -->", "<!-- drills:end -->"


def _drills(quick: bool) -> list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]]:
    if quick:
        return [
            (
                "kill",
                lambda: drill_fanout_faults.worker_kill(hosts=100, posts=10, lease_seconds=12),
            ),
            ("flush", lambda: drill_fanout_faults.redis_flush(hosts=20, posts=60)),
            ("fuzz", lambda: fuzz_api.fuzz(max_examples=5)),
        ]
    return [
        ("kill", lambda: drill_fanout_faults.worker_kill(hosts=1000, posts=10)),
        ("flush", lambda: drill_fanout_faults.redis_flush(hosts=100, posts=100)),
        ("fuzz", lambda: fuzz_api.fuzz(max_examples=25)),
    ]


def headline(name: str, result: dict[str, Any]) -> str:
    figures = result.get("figures", {})
    if name == "kill":
        return (
            f"{figures.get('delivered')}/{figures.get('expected')} delivered; "
            f"{figures.get('duplicates')} duplicates, {figures.get('in_flight_at_kill')} "
            f"in flight (claimed) at the kill; last delivery "
            f"{figures.get('seconds_from_kill_to_last')} s after the kill "
            f"(lease {figures.get('lease_seconds')} s)"
        )
    if name == "flush":
        return (
            f"{figures.get('delivered')}/{figures.get('expected')} delivered, "
            f"{figures.get('duplicates')} duplicates; {figures.get('jobs_queued_at_flush')} "
            f"jobs flushed; last delivery {figures.get('seconds_from_flush_to_last')} s "
            "after the flush"
        )
    if name == "fuzz":
        failing = ", ".join(result.get("failing_operations", [])) or "none"
        return f"{result.get('server_errors_reported')} server errors; failing: {failing}"
    return ""


def render_table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| Drill | Verdict | Figures | Command |", "|---|---|---|---|"]
    for name, result in results.items():
        verdict = "pass" if result.get("verdict") == "pass" else "**FAIL**"
        title = result.get("name", name)
        rows.append(
            f"| {title} | {verdict} | {headline(name, result)} | `{result.get('command', '')}` |"
        )
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return "\n".join([f"Measured {stamp} by `make drills`.", "", *rows])


def update_doc(results: dict[str, dict[str, Any]]) -> None:
    if not DOC.exists():
        return
    text = DOC.read_text()
    if START not in text or END not in text:
        return
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    DOC.write_text(f"{before}{START}\n{render_table(results)}\n{END}{after}")


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, drill in _drills(args.quick):
        if args.only and not name.startswith(args.only):
            continue
        started = time.monotonic()
        print(f"{name} ...", flush=True)
        try:
            result = await drill()
        except Exception as exc:
            result = {"verdict": "fail", "error": f"{type(exc).__name__}: {exc}"}
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        results[name] = result
        print(f"  {result.get('verdict')}: {headline(name, result)}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.only and not args.quick:
        (RESULTS / "drills.json").write_text(json.dumps(results, indent=2) + "\n")
        update_doc(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drills")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    failed = [name for name, result in results.items() if result.get("verdict") != "pass"]
    print(f"\n{len(results) - len(failed)} of {len(results)} drills passed")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
