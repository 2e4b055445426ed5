"""`make drills`: every fault drill and the API fuzzing, each with a pass/fail verdict.

Writes ``bench/results/drills.json`` and regenerates the results table in
``docs/reliability.md`` between its markers. Bounded to about 10 minutes; ``--quick`` runs
smaller sizes, ``--only NAME`` one drill. Exits non-zero when any drill fails.

    python -m bench.drills [--quick] [--only kill] [--redis-down-seconds 30]
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

from bench import (
    drill_fanout_faults,
    drill_host_faults,
    drill_inbox_flood,
    drill_outages,
    fuzz_api,
)

RESULTS = Path(__file__).parent / "results"
DOC = Path(__file__).parent.parent / "docs" / "reliability.md"
START, END = "<!-- drills:start -->", "<!-- drills:end -->"


DrillList = list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]]


def _drills(quick: bool, redis_down_seconds: float) -> DrillList:
    if quick:
        return [
            (
                "kill",
                lambda: drill_fanout_faults.worker_kill(hosts=100, posts=10, lease_seconds=12),
            ),
            ("flush", lambda: drill_fanout_faults.redis_flush(hosts=20, posts=60)),
            ("redis", lambda: drill_outages.redis_down(down_seconds=5, hosts=5)),
            ("postgres", lambda: drill_outages.postgres_restart(down_seconds=5, hosts=5)),
            (
                "failing",
                lambda: drill_host_faults.failing_hosts(hosts=20, posts=10, fault_seconds=15),
            ),
            ("slow", lambda: drill_host_faults.slow_host(hosts=5, posts=5)),
            ("flood", lambda: drill_inbox_flood.inbox_flood(requests=2500)),
            ("fuzz", lambda: fuzz_api.fuzz(max_examples=5)),
        ]
    return [
        ("kill", lambda: drill_fanout_faults.worker_kill(hosts=1000, posts=10)),
        ("flush", lambda: drill_fanout_faults.redis_flush(hosts=100, posts=100)),
        ("redis", lambda: drill_outages.redis_down(down_seconds=redis_down_seconds)),
        ("postgres", lambda: drill_outages.postgres_restart(down_seconds=10)),
        (
            "failing",
            lambda: drill_host_faults.failing_hosts(
                hosts=100, posts=50, fault_seconds=60, recovery_timeout=90
            ),
        ),
        ("slow", lambda: drill_host_faults.slow_host(hosts=20, posts=20)),
        ("flood", lambda: drill_inbox_flood.inbox_flood(requests=5000)),
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
    if name in ("redis", "postgres"):
        hooks = figures.get("webhooks", {})
        return (
            f"{hooks.get('sent')} webhooks sent, answers {hooks.get('statuses')}; while down: "
            f"{figures.get('statuses_while_down')}; {figures.get('delivered')}/"
            f"{figures.get('expected_deliveries')} delivered, {figures.get('duplicates')} "
            f"duplicates; last delivery {figures.get('seconds_from_restore_to_last')} s after "
            f"the restart; worker processes that exited: {figures.get('workers_exited')}"
        )
    if name == "failing":
        return (
            f"{figures.get('failing_hosts')} of {figures.get('hosts')} hosts failing; healthy "
            f"hosts' last delivery {figures.get('healthy_last_seconds')} s vs baseline "
            f"{figures.get('baseline_seconds')} s (× {figures.get('healthy_ratio')}); "
            f"{figures.get('delivered')}/{figures.get('deliveries')} delivered; failing hosts "
            f"complete {figures.get('failing_last_after_recovery_seconds')} s after recovering "
            f"(retry time scale {figures.get('retry_time_scale')}); breakers of the failing "
            f"hosts, worst seen: {figures.get('failing_breakers')}"
        )
    if name == "slow":
        ok, bad = figures.get("slow_2xx_body", {}), figures.get("slow_error_body", {})
        return (
            f"baseline {figures.get('baseline_seconds')} s; others' last delivery "
            f"{ok.get('others_last_seconds')} s (slow 2xx body, slow host's attempts "
            f"{ok.get('slow_attempt_ms')} ms) and {bad.get('others_last_seconds')} s (slow "
            f"error body: {bad.get('slow_timeouts')} timeouts after {bad.get('slow_attempt_ms')} "
            "ms)"
        )
    if name == "flood":
        return (
            f"flood answers {figures.get('flood_statuses')} in {figures.get('flood_seconds')} s; "
            f"{figures.get('follows_accepted')}/4 genuine Follows accepted, last Accept "
            f"{figures.get('follow_to_accept_seconds')} s after; refused: "
            f"{figures.get('genuine_follows_refused')}; API RSS "
            f"{figures.get('api_rss_before_mb')} → {figures.get('api_rss_peak_mb')} MB"
        )
    if name == "fuzz":
        failing = ", ".join(result.get("failing_operations", [])) or "none"
        return f"{result.get('server_errors_reported')} server errors; failing: {failing}"
    return ""


def render_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per drill; each result carries the time it was measured."""
    rows = ["| Drill | Verdict | Figures | Command |", "|---|---|---|---|"]
    for name, result in results.items():
        verdict = "pass" if result.get("verdict") == "pass" else "**FAIL**"
        failed = [c["name"] for c in result.get("checks", []) if not c.get("ok")]
        if failed or result.get("error"):
            verdict += ": " + "; ".join(
                failed + ([str(result["error"])] if result.get("error") else [])
            )
        title = result.get("name", name)
        rows.append(
            f"| {title} | {verdict} | {headline(name, result)} | `{result.get('command', '')}` |"
        )
    stamps = sorted(str(r.get("measured_at", "")) for r in results.values() if r.get("measured_at"))
    span = f"{stamps[0]} to {stamps[-1]}" if stamps else datetime.now(UTC).isoformat()
    return "\n".join([f"Measured {span} by `make drills`.", "", *rows])


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
    for name, drill in _drills(args.quick, args.redis_down_seconds):
        if args.only and not name.startswith(args.only):
            continue
        started = time.monotonic()
        print(f"{name} ...", flush=True)
        try:
            result = await drill()
        except Exception as exc:
            result = {"verdict": "fail", "error": f"{type(exc).__name__}: {exc}"}
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results[name] = result
        print(f"  {result.get('verdict')}: {headline(name, result)}", flush=True)
        if result.get("verdict") != "pass":
            failed = [c for c in result.get("checks", []) if not c.get("ok")]
            print(f"  failed checks: {failed} error: {result.get('error')}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        # A partial run (--only) replaces its own drills' entries and keeps the others.
        stored = RESULTS / "drills.json"
        merged = json.loads(stored.read_text()) if args.only and stored.exists() else {}
        merged.update(results)
        stored.write_text(json.dumps(merged, indent=2) + "\n")
        update_doc(merged)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drills")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only")
    parser.add_argument(
        "--redis-down-seconds", type=float, default=30.0, help="length of the Redis outage"
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    failed = [name for name, result in results.items() if result.get("verdict") != "pass"]
    print(f"\n{len(results) - len(failed)} of {len(results)} drills passed")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
