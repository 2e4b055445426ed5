"""The worker process carries only what delivering needs: no console rendering, no migrations,
and a bounded number of malloc arenas; development consoles keep their rich tracebacks."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from service.runtime.settings import Settings
from service.runtime.structured_logs import configure_logging

ROOT = Path(__file__).resolve().parents[2]

# Runs `fedirelay worker` up to the point where arq would take over, then reports.
WORKER_UP_TO_ARQ = """
import json, sys
sys.argv = ["fedirelay", "worker"]
import arq.worker
import service.cli.commands

def report(options):
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    raise SystemExit(0)

arq.worker.run_worker = report
service.cli.commands.main()
"""


def run_python(code: str, **env: str) -> str:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FEDIRELAY_") and key != "MALLOC_ARENA_MAX"
    }
    environment.update(PYTHONPATH=str(ROOT), **env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_worker_command_loads_no_console_rendering_or_migration_libraries() -> None:
    output = run_python(
        WORKER_UP_TO_ARQ,
        FEDIRELAY_REDIS_URL="redis://127.0.0.1:1/0",
        FEDIRELAY_LOG_FORMAT="json",
    )
    loaded = set(json.loads(output.splitlines()[-1]))

    assert "workers" in loaded and "httpx" in loaded  # the task modules were imported
    assert not loaded & {"rich", "pygments", "alembic", "mako"}


def test_worker_command_loads_no_web_framework() -> None:
    output = run_python(
        WORKER_UP_TO_ARQ,
        FEDIRELAY_REDIS_URL="redis://127.0.0.1:1/0",
        FEDIRELAY_LOG_FORMAT="json",
    )
    loaded = set(json.loads(output.splitlines()[-1]))

    assert not loaded & {"fastapi", "starlette"}


def test_cli_still_imports_rich_once_the_worker_modules_are_loaded() -> None:
    output = run_python(
        "import workers.worker as w; w._modules(); import rich.table; print(rich.table.Table)"
    )
    assert "rich.table.Table" in output


def test_worker_caps_malloc_arenas_unless_the_operator_chose() -> None:
    code = "from workers.worker import limit_malloc_arenas; print(limit_malloc_arenas())"
    assert run_python(code).strip() == "True"
    assert run_python(code, MALLOC_ARENA_MAX="4").strip() == "False"


def test_console_logs_render_tracebacks_with_locals_and_without_secrets() -> None:
    secret = "console-secret-token-0123456789"
    stream = io.StringIO()
    configure_logging(Settings(log_format="console", admin_token=secret), stream=stream)
    try:
        try:
            token = secret
            raise ValueError(f"bad {token}")
        except ValueError:
            logging.getLogger("console").exception("failed")
    finally:
        configure_logging(Settings())

    output = stream.getvalue()
    assert "failed" in output and "ValueError" in output
    assert "locals" in output and "token" in output  # rich's traceback, as before
    assert secret not in output
