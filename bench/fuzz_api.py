"""Fuzzing the admin and webhook APIs from their OpenAPI schema: no input may cause a 500.

Runs schemathesis (its `not_a_server_error` check only: other checks judge schema
conformance, which is not the point here) against a relay started by
:class:`~bench.harness.relay_process.RelayProcesses`, with the admin token, over every operation
under ``/api/admin`` and ``/hooks``, with a bounded number of examples per operation.

    python -m bench.fuzz_api --max-examples 25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness.relay_process import RelayProcesses
from bench.harness.webhook_client import CMS_SETTINGS

PATHS = r"^/(api/admin|hooks)"


async def fuzz(max_examples: int = 25, time_limit: float = 300.0) -> dict[str, Any]:
    async with RelayProcesses(workers=0, settings=CMS_SETTINGS) as relay:
        report = relay.directory / "schemathesis.ndjson"
        st = str(Path(sys.executable).with_name("schemathesis"))
        command = [
            st, "run", relay.base_url + "/openapi.json",
            "--checks", "not_a_server_error",
            "--include-path-regex", PATHS,
            "--max-examples", str(max_examples),
            "--header", f"Authorization: {relay.admin_headers['Authorization']}",
            "--request-timeout", "10",
            "--generation-deterministic",
            # The coverage phase of schemathesis 4.x crashes inside its own schema walker on
            # our schema; examples and fuzzing are the phases that generate inputs.
            "--phases", "examples,fuzzing",
            "--workers", "2",
            "--report", "ndjson", "--report-ndjson-path", str(report),
        ]  # fmt: skip
        try:
            completed = await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, timeout=time_limit
            )
        except subprocess.TimeoutExpired as exc:
            return {"verdict": "fail", "error": f"schemathesis ran over {time_limit}s: {exc}"}
        api_log = relay.api.log_tail(60) if relay.api else ""
        errors = sorted(set(re.findall(r"(\w+Error\('[^']{0,80})", api_log)))
    output = completed.stdout
    summary = [
        line for line in output.splitlines()[-40:] if re.search(r"passed|failed|error", line)
    ][-8:]
    server_errors = output.count("Server error")
    failing = sorted(
        {
            match.group(1)
            for match in re.finditer(r"^_+ ((?:GET|POST|PUT|PATCH|DELETE) \S+) _+$", output, re.M)
        }
    )
    failures = ""
    if "FAILURES" in output:
        failures = output.split("FAILURES", 1)[1].split("SUMMARY", 1)[0][-6000:]
    return {
        "failures": failures,
        "name": "API fuzzing (schemathesis, admin and webhook APIs)",
        "verdict": "pass" if completed.returncode == 0 else "fail",
        "exit_code": completed.returncode,
        "max_examples": max_examples,
        "server_errors_reported": server_errors,
        "failing_operations": failing,
        "summary": [line[:300] for line in summary],
        "output_tail": output[-4000:] if completed.returncode else "",
        "api_errors": [e for e in errors if e][:10],
        "command": f"python -m bench.fuzz_api --max-examples {max_examples}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_api")
    parser.add_argument("--max-examples", type=int, default=25)
    args = parser.parse_args()
    result = asyncio.run(fuzz(args.max_examples))
    print(json.dumps(result, indent=2))
    raise SystemExit(0 if result["verdict"] == "pass" else 1)


if __name__ == "__main__":
    main()
