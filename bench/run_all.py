"""`make bench`: every benchmark, several runs each, medians against targets.

Writes ``bench/results/<name>.json`` (every run plus the medians) and regenerates the
figures table in ``docs/benchmarks.md`` between its markers. Bounded to about 10 minutes on
a 2-core machine; ``--quick`` runs each once at a smaller size, ``--only NAME`` one of them,
``--long`` adds the 100,000-delivery memory run (about 5 more minutes; ``--only memory``
runs it alone, as ``make bench-long`` does). The table is rebuilt from the latest stored
result of every benchmark, so a partial run updates its own rows only.

    python -m bench.run_all [--runs 3] [--quick] [--only fanout] [--long]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import bench_fanout, bench_ingest, bench_intake, bench_latency, bench_memory
from bench.machine_ceiling import signing_ceiling

RESULTS = Path(__file__).parent / "results"
QUICK_RESULTS = Path(__file__).parent.parent / "var" / "bench-quick"  # ignored by git
DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


@dataclass(frozen=True)
class Benchmark:
    name: str
    command: str
    run: Callable[[bool], Awaitable[dict[str, Any]]]
    runs: int
    figure: str  # the headline figure (a key path, dots for nesting)
    target: str
    met: Callable[[dict[str, Any]], bool | None]


def dig(values: dict[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def median_of(runs: list[dict[str, Any]], path: str) -> float | None:
    values = [dig(run, path) for run in runs]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return round(statistics.median(numbers), 3) if numbers else None


def _fanout(workers: int) -> Callable[[bool], Awaitable[dict[str, Any]]]:
    async def run(quick: bool) -> dict[str, Any]:
        if quick:
            return await bench_fanout.throughput(hosts=50, posts=20, workers=workers)
        return await bench_fanout.throughput(hosts=200, posts=50, workers=workers)

    return run


async def _shared(quick: bool) -> dict[str, Any]:
    if quick:
        return await bench_latency.shared_inbox(hosts=200, followers=10)
    return await bench_latency.shared_inbox(hosts=1000, followers=10)


async def _host_cost(quick: bool) -> dict[str, Any]:
    if quick:
        return await bench_fanout.host_cost(hosts=200, followers=20)
    return await bench_fanout.host_cost(hosts=1000, followers=100)


async def _latency(quick: bool) -> dict[str, Any]:
    return await bench_latency.latency(samples=10 if quick else 40)


async def _ingest(quick: bool) -> dict[str, Any]:
    return await bench_ingest.ingest(connections=16, seconds=5 if quick else 10)


async def _intake_rate(quick: bool) -> dict[str, Any]:
    if quick:
        return await bench_intake.rate(count=2000, hosts=50)
    return await bench_intake.rate(count=10_000, hosts=100)


def _intake_follows(database: str) -> Callable[[bool], Awaitable[dict[str, Any]]]:
    async def run(quick: bool) -> dict[str, Any]:
        if quick:
            return await bench_intake.follows(hosts=100, followers=2, database=database)
        return await bench_intake.follows(hosts=1000, followers=10, database=database)

    return run


async def _memory(quick: bool) -> dict[str, Any]:
    return await bench_memory.memory(deliveries=10_000 if quick else 100_000)


def _ratio_met(result: dict[str, Any]) -> bool | None:
    ratio = result.get("cpu_ratio_to_ceiling")
    return None if ratio is None else ratio >= 0.6


BENCHMARKS = [
    Benchmark(
        "fanout_1_worker",
        "python -m bench.bench_fanout throughput --hosts 200 --posts 50 --workers 1",
        _fanout(1),
        3,
        "deliveries_per_second",
        "≥ 0.6 × single-core RSA-2048 signing rate per worker core",
        _ratio_met,
    ),
    Benchmark(
        "fanout_2_workers",
        "python -m bench.bench_fanout throughput --hosts 200 --posts 50 --workers 2",
        _fanout(2),
        1,
        "deliveries_per_second",
        "near-linear over one worker, where cores allow",
        lambda result: None,
    ),
    Benchmark(
        "shared_inbox_fanout",
        "python -m bench.bench_latency shared --hosts 1000 --followers 10",
        _shared,
        3,
        "seconds_to_last",
        "1,000 deliveries for 10,000 followers; last host < 2 s after the webhook's 202",
        lambda r: r.get("deliveries") == r.get("hosts") and (r.get("seconds_to_last") or 99) < 2,
    ),
    Benchmark(
        "cost_per_host",
        "python -m bench.bench_fanout host-cost --hosts 1000 --followers 100",
        _host_cost,
        1,
        "time_ratio",
        "1,000 hosts × 100 followers within 1.2 × the time of 1,000 hosts × 1 follower",
        lambda r: None if r.get("time_ratio") is None else r["time_ratio"] <= 1.2,
    ),
    Benchmark(
        "webhook_to_first_inbox",
        "python -m bench.bench_latency latency --samples 40",
        _latency,
        1,
        "p50_ms",
        "idle relay: p50 < 100 ms, p99 < 500 ms",
        lambda r: None if r.get("p50_ms") is None else r["p50_ms"] < 100 and r["p99_ms"] < 500,
    ),
    Benchmark(
        "webhook_ingest",
        "python -m bench.bench_ingest --connections 16 --seconds 10",
        _ingest,
        3,
        "webhooks_per_second",
        "≥ 1,000 webhooks/s stored before the answer, p99 < 50 ms",
        lambda r: (
            None
            if "webhooks_per_second" not in r
            else r["webhooks_per_second"] >= 1000 and r["p99_ms"] < 50
        ),
    ),
    Benchmark(
        "inbox_intake",
        "python -m bench.bench_intake rate --count 10000 --hosts 100",
        _intake_rate,
        3,
        "activities_per_second",
        "≥ 1,500 signed activities/s verified and stored by one API process",
        lambda r: (
            None
            if "activities_per_second" not in r
            else r["activities_per_second"] >= 1500 and r["every_accepted_stored"]
        ),
    ),
    Benchmark(
        "follow_handshakes",
        "python -m bench.bench_intake follows --hosts 1000 --followers 10",
        _intake_follows("sqlite"),
        1,
        "accepted_within_target",
        "10,000 Follows from 1,000 hosts all accepted (Accept delivered) within 30 s",
        lambda r: r.get("all_accepted_within_target"),
    ),
    Benchmark(
        "follow_handshakes_postgres",
        "python -m bench.bench_intake follows --hosts 1000 --followers 10 --database postgres",
        _intake_follows("postgres"),
        1,
        "accepted_within_target",
        "as above, on PostgreSQL (the production database)",
        lambda r: r.get("all_accepted_within_target"),
    ),
]
MEMORY = Benchmark(
    "memory_100k",
    "python -m bench.bench_memory --deliveries 100000",
    _memory,
    1,
    "worker_growth",
    "worker and API RSS under 150 MB and within 10 % across 100,000 deliveries",
    lambda r: r.get("met"),
)


async def run_benchmark(bench: Benchmark, runs: int, quick: bool) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for _ in range(runs):
        started = time.monotonic()
        try:
            result = await bench.run(quick)
        except Exception as exc:  # one failed run is reported, the others still count
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        results.append(result)
        print(f"  {bench.name}: {dig(result, bench.figure)}", flush=True)
    good = [r for r in results if "error" not in r]
    medians = {key: median_of(good, key) for key in _numeric_keys(good)}
    verdicts = [bench.met(r) for r in good]
    met = (
        None
        if not good or any(v is None for v in verdicts)
        else statistics.median([1.0 if v else 0.0 for v in verdicts]) >= 0.5
    )
    return {
        "name": bench.name,
        "command": bench.command + (" (quick size)" if quick else ""),
        "target": bench.target,
        "figure": bench.figure,
        "median": median_of(good, bench.figure),
        "met": met,
        "medians": medians,
        "runs": results,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def _numeric_keys(results: list[dict[str, Any]], prefix: str = "") -> list[str]:
    keys: set[str] = set()
    for result in results:
        for key, value in result.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                keys.update(_numeric_keys([value], path + "."))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                keys.add(path)
    return sorted(keys)


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def render_table(summaries: list[dict[str, Any]]) -> str:
    rows = [
        "| Benchmark | Median | Target | Met | Command |",
        "|---|---|---|---|---|",
    ]
    for summary in summaries:
        met = {True: "yes", False: "**no**", None: "n/a"}[summary["met"]]
        figure = f"{summary['median']} ({summary['figure']})"
        if summary["name"].startswith("fanout"):
            medians = summary["medians"]
            figure += (
                f"; {medians.get('deliveries_per_worker_cpu_second')} per worker-CPU-second; "
                f"ceiling {medians.get('ceiling.rsa2048_signatures_per_second')} sig/s; "
                f"ratio {medians.get('cpu_ratio_to_ceiling')} (per CPU) / "
                f"{medians.get('ratio_to_ceiling')} (wall)"
            )
        if summary["name"] == "webhook_ingest":
            figure += f"; p99 {summary['medians'].get('p99_ms')} ms"
        if summary["name"] == "inbox_intake":
            medians = summary["medians"]
            figure += (
                f"; p99 {medians.get('p99_ms')} ms; {medians.get('activities_per_api_cpu_second')}"
                f" per API-CPU-second; ratio to signing ceiling {medians.get('ratio_to_ceiling')}"
            )
        if summary["name"].startswith("follow_handshakes"):
            medians = summary["medians"]
            last = medians.get("seconds_to_last_accept")
            cpu = {
                key.split(".", 1)[1]: value
                for key, value in medians.items()
                if key.startswith("cpu_ms_per_follow.")
            }
            figure += (
                f" of {int(medians.get('expected') or 0)}; Follows taken at "
                f"{medians.get('follows_per_second_taken')}/s (p50 {medians.get('follow_p50_ms')}"
                f" ms); {int(medians.get('accepts_arrived') or 0)} Accepts within the 60 s wait"
                + (f", the last after {last} s" if last is not None else "")
                + (f"; CPU ms per Follow {cpu}" if cpu else "")
            )
        if summary["name"] == "memory_100k":
            run = summary["runs"][0] if summary["runs"] else {}
            figure += (
                f"; RSS MB warm {run.get('warm_mb')}, final {run.get('final_mb')}, "
                f"peak {run.get('peak_mb')}; growth {run.get('growth')}"
            )
        if summary["name"] == "webhook_to_first_inbox":
            figure += f"; p99 {summary['medians'].get('p99_ms')} ms"
        runs = len(summary["runs"])
        rows.append(
            f"| {summary['name']} ({runs} run{'s' if runs > 1 else ''}) | {figure} | "
            f"{summary['target']} | {met} | `{summary['command']}` |"
        )
    stamps = sorted(summary["measured_at"] for summary in summaries)
    span = f"{stamps[0]} to {stamps[-1]}" if stamps else ""
    return "\n".join(
        [
            f"Measured {span} by `make bench` (`make bench-long` for the memory row); the "
            "load average at the start of each run is in `bench/results/<name>.json`.",
            "",
            *rows,
        ]
    )


def stored_summaries() -> list[dict[str, Any]]:
    """The latest full-size result of every benchmark, in the table's order."""
    found = []
    for bench in [*BENCHMARKS, MEMORY]:
        path = RESULTS / f"{bench.name}.json"
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found


def update_doc(summaries: list[dict[str, Any]]) -> None:
    if not DOC.exists():
        return
    text = DOC.read_text()
    if START not in text or END not in text:
        return
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    DOC.write_text(f"{before}{START}\n{render_table(summaries)}\n{END}{after}")


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    # Quick runs are smoke runs at smaller sizes: kept apart from the figures in the docs.
    results = QUICK_RESULTS if args.quick else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHMARKS if not args.only or b.name.startswith(args.only)]
    if args.long or (args.only and MEMORY.name.startswith(args.only)):
        chosen.append(MEMORY)
    ceiling = await asyncio.to_thread(signing_ceiling)
    print(f"single-core RSA-2048 signing: {ceiling}", flush=True)
    summaries = []
    for bench in chosen:
        runs = 1 if args.quick else (args.runs or bench.runs)
        print(f"{bench.name} ({runs} run(s))", flush=True)
        summary = await run_benchmark(bench, runs, args.quick)
        summary["ceiling_at_start"] = ceiling
        (results / f"{bench.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        summaries.append(summary)
    if not args.quick:
        update_doc(stored_summaries())
    return summaries


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all")
    parser.add_argument("--runs", type=int, help="runs per benchmark (default: its own)")
    parser.add_argument("--quick", action="store_true", help="one small run each")
    parser.add_argument("--only", help="benchmarks whose name starts with this")
    parser.add_argument("--long", action="store_true", help="add the 100,000-delivery memory run")
    args = parser.parse_args()
    started = time.monotonic()
    summaries = asyncio.run(main_async(args))
    print(f"\n{len(summaries)} benchmarks in {time.monotonic() - started:.0f}s")
    for summary in summaries:
        print(f"  {summary['name']}: {summary['median']} met={summary['met']}")


if __name__ == "__main__":
    main()
