"""Webhook ingest: one API process, authenticated CMS webhooks, each stored before its 202.

Load comes from Debian's ``wrk`` (one thread, a fixed number of connections) replaying
pre-signed requests from a generated Lua script, each with its own ``webhook-id`` so every
request is a new event; no worker runs, so the API has its core to itself. After the run
the database must hold one event per accepted request.

    python -m bench.bench_ingest --connections 16 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.harness.relay_process import RelayProcesses
from bench.harness.webhook_client import CMS_SETTINGS, cms_published, signed_headers
from bench.profiling import hot_spots, sampled
from service.db.models import WebhookEvent

_DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"status_errors": %d, "timeouts": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout))
end
"""


def write_script(path: Path, host: str, handle: str, count: int) -> None:
    """A wrk script cycling through ``count`` distinct, signed webhook requests, read as raw
    HTTP/1.1 from a data file (a Lua chunk may not hold that many constants)."""
    data = path.with_suffix(".requests")
    with data.open("wb") as out:
        for number in range(count):
            body = cms_published(handle, f"ingest {number}")
            headers = signed_headers(body, f"msg_ingest_{number}")
            head = f"POST /hooks/cms HTTP/1.1\r\nHost: {host}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            head += f"Content-Length: {len(body)}\r\n\r\n"
            out.write(head.encode() + body + b"\0")
    path.write_text(
        f"local file = io.open('{data}', 'rb')\n"
        "local blob = file:read('*a')\nfile:close()\n"
        "local requests = {}\n"
        "for item in string.gmatch(blob, '([^%z]+)') do requests[#requests + 1] = item end\n"
        "local index = 0\n"
        "request = function() index = index + 1; "
        "if index > #requests then index = 1 end; return requests[index] end\n" + _DONE
    )


async def ingest(
    connections: int = 16,
    seconds: int = 10,
    requests: int = 40_000,
    database: str = "sqlite",
    profile: Path | None = None,
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (apt-get install -y wrk)"}
    async with RelayProcesses(workers=0, settings=CMS_SETTINGS, database=database) as relay:  # type: ignore[arg-type]
        script = relay.directory / "webhooks.lua"
        await asyncio.to_thread(
            write_script, script, relay.base_url.split("://", 1)[1], relay.handle, requests
        )
        cpu_before = relay.api.cpu_seconds() if relay.api else 0.0
        with sampled(relay.api.pid if relay.api and profile else None, profile):
            completed = await asyncio.to_thread(
            subprocess.run,
                [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                 "-s", str(script), relay.base_url],
                capture_output=True, text=True, timeout=seconds + 60,
            )  # fmt: skip
        api_cpu = (relay.api.cpu_seconds() if relay.api else 0.0) - cpu_before
        line = next(
            (row for row in completed.stdout.splitlines() if row.startswith("WRK_JSON ")), None
        )
        if line is None:
            raise RuntimeError(f"wrk gave no summary: {completed.stdout}\n{completed.stderr}")
        figures = json.loads(line.removeprefix("WRK_JSON "))
        async with relay.database.session() as session:
            stored = int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)
    duration = figures["duration_us"] / 1e6
    answered = figures["requests"]
    failed = figures["status_errors"] + figures["timeouts"] + figures["read_errors"]
    accepted = answered - failed
    return {
        "connections": connections,
        "seconds": round(duration, 2),
        "requests": answered,
        "accepted": accepted,
        "stored_events": stored,
        "distinct_requests_available": requests,
        "webhooks_per_second": round(accepted / duration, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p90_ms": round(figures["p90_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "max_ms": round(figures["max_us"] / 1000, 2),
        "errors": {
            k: figures[k]
            for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        },  # fmt: skip
        "api_cpu_seconds": round(api_cpu, 2),
        "every_accepted_request_stored": stored >= min(accepted, requests),
        "database": database,
        **({"api_hot_spots": hot_spots(profile, 25).as_dict()} if profile else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the API")
    args = parser.parse_args()
    result = asyncio.run(
        ingest(args.connections, args.seconds, database=args.database, profile=args.profile)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
