"""The suite gives the same verdicts whatever `FEDIRELAY_*` settings the caller's shell holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Tests whose outcome depends on a setting the caller could also set: production mode refuses a
# loopback feed URL, and the log format and token are what the logging tests read and redact.
SETTING_SENSITIVE_TESTS = [
    "tests/service/cli/test_cli_feeds.py::test_add_refuses_a_url_the_relay_may_not_fetch",
    "tests/service/runtime/test_structured_logs.py",
]


def test_the_callers_relay_settings_do_not_reach_the_tests() -> None:
    env = {
        **os.environ,
        "FEDIRELAY_TEST_MODE": "true",
        "FEDIRELAY_LOG_FORMAT": "console",
        "FEDIRELAY_ADMIN_TOKEN": "a-token-from-the-callers-shell",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            *SETTING_SENSITIVE_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]
