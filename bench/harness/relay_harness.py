"""Run the real relay inside tests: the API on a loopback port, arq workers in-process or as
subprocesses, each pointed at the test's database and private Redis server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from arq.worker import Worker

from service.app import create_app
from service.runtime.embedded_redis import free_port
from service.runtime.settings import Settings
from workers.worker import worker_settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess see the same settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            env.pop(f"FEDIRELAY_{name.upper()}", None)
            continue
        env[f"FEDIRELAY_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    env["FEDIRELAY_DATABASE_URL"] = settings.effective_database_url
    return env


@contextlib.asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[str]:
    """Serve the app with uvicorn on settings.listen_host/port; yields the base URL."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.025)
        else:
            raise RuntimeError("API did not start")
        yield f"http://{settings.listen_host}:{settings.listen_port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Worker]:
    """An arq worker in this event loop (fast to start; for tests that do not kill it)."""
    options = worker_settings(settings, handle_signals=False, **overrides)
    # arq keeps cron schedules on the module-level CronJob objects; a fresh worker in the same
    # process must start from scratch, as a new worker process would.
    for cron_job in options["cron_jobs"]:
        cron_job.next_run = None
    worker = Worker(**options)
    task = asyncio.create_task(worker.async_run())
    try:
        # Fail loudly if startup fails, instead of a test timing out on a worker that never ran.
        for _ in range(400):
            if worker.ctx.get("ready"):
                break
            if task.done():
                task.result()
                raise RuntimeError("worker stopped during startup")
            await asyncio.sleep(0.025)
        else:
            raise RuntimeError("worker did not finish startup in 10 s")
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        # close() gathers the job tasks it cancelled; their CancelledError is expected here.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker.close()


class WorkerProcess:
    """`fedirelay worker` as a real subprocess, so a test can SIGKILL it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "service.cli", "worker"],
            env=settings_env(self.settings),
            stdin=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def loopback_settings(base: Settings, host: str = "127.0.0.1") -> Settings:
    """Settings for a relay really listening on a free loopback port, its ids on that address."""
    port = free_port(host)
    return base.model_copy(
        update={"listen_host": host, "listen_port": port, "base_url": f"http://{host}:{port}"}
    )


def asgi_client(app: Any, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
