"""`fedirelay worker --check`, the Helm chart's worker liveness probe, run as the chart runs it:
the installed command, found on PATH, in an environment holding only the relay's settings,
against a real Redis and a real worker process.

tests/helm checks that the chart's probe is exactly `WORKER_LIVENESS_PROBE`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from service.runtime.embedded_redis import EmbeddedRedis, free_port
from tests.database_backends import create_sqlite_database

WORKER_LIVENESS_PROBE = ["fedirelay", "worker", "--check"]
# Where pip installed the `fedirelay` script, next to the interpreter running the tests.
INSTALLED_SCRIPTS = Path(sys.executable).parent
WORKER_START_SECONDS = 60


def relay_environment(redis_url: str, queue_name: str, **settings: str) -> dict[str, str]:
    """Only what the command needs: its PATH and the relay's settings, none of the caller's."""
    assert (INSTALLED_SCRIPTS / "fedirelay").exists(), "pip install -e . installs `fedirelay`"
    return {
        "PATH": str(INSTALLED_SCRIPTS),
        "FEDIRELAY_REDIS_URL": redis_url,
        "FEDIRELAY_QUEUE_NAME": queue_name,
        **settings,
    }


def run_probe(environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the chart's own probe command
        WORKER_LIVENESS_PROBE,
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def output_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


def wait_for_health_check_key(
    redis_url: str, queue_name: str, worker: subprocess.Popen[str]
) -> None:
    client = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while time.monotonic() < deadline:
            if any(client.scan_iter(match=f"{queue_name}:health-check:*")):
                return
            if worker.poll() is not None:
                pytest.fail(f"the worker exited with {worker.returncode}")
            time.sleep(0.1)
        pytest.fail(f"the worker wrote no health-check key in {WORKER_START_SECONDS} s")
    finally:
        client.close()


@pytest.fixture
def live_worker(
    redis_server: EmbeddedRedis, queue_name: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """A real `fedirelay worker` process on its own migrated database; yields its settings."""
    environment = relay_environment(
        redis_server.url,
        queue_name,
        FEDIRELAY_DATABASE_URL=create_sqlite_database(tmp_path),
        FEDIRELAY_DATA_DIR=str(tmp_path),
        FEDIRELAY_LOG_FORMAT="json",
    )
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(  # noqa: S603
            ["fedirelay", "worker"],  # noqa: S607 - found on the PATH given, as in the chart
            env=environment,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_health_check_key(redis_server.url, queue_name, worker)
            yield environment
        finally:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)


def test_check_succeeds_while_a_worker_runs(live_worker: dict[str, str], tmp_path: Path) -> None:
    result = run_probe(live_worker, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_in_one_line_when_no_worker_runs(
    redis_server: EmbeddedRedis, queue_name: str, tmp_path: Path
) -> None:
    result = run_probe(relay_environment(redis_server.url, queue_name), tmp_path)

    assert result.returncode != 0
    lines = output_lines(result)
    assert len(lines) == 1, lines
    assert "no worker is running" in lines[0]
    assert "Traceback" not in lines[0]


def test_check_fails_in_one_line_when_redis_is_unreachable(queue_name: str, tmp_path: Path) -> None:
    unreachable = f"redis://:probe-password@127.0.0.1:{free_port()}/0"

    result = run_probe(relay_environment(unreachable, queue_name), tmp_path)

    assert result.returncode != 0
    lines = output_lines(result)
    assert len(lines) == 1, lines
    assert "Redis is unreachable" in lines[0]
    assert "probe-password" not in lines[0]
