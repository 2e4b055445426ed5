"""The relay as real processes for benchmarks and drills: API, workers, a private Redis.

Each run gets a fresh database (a SQLite file, or a new database on a private PostgreSQL
cluster that the drill may restart), its own redis-server, one ``fedirelay serve`` process
and N ``fedirelay worker`` processes, all in test mode (plain http and loopback peers).
Processes can be killed and restarted, and their memory and CPU read with psutil.

Usage::

    async with RelayProcesses(workers=1) as relay:
        relay.actor_url            # the account's actor id, served by the API process
        async with relay.database.transaction() as session: ...
        relay.kill_worker(0); relay.start_worker()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import psutil
from redis.asyncio import Redis

from bench.harness.private_postgres import PrivatePostgres
from bench.harness.relay_harness import settings_env
from federation.activitypub.urls import InstanceUrls
from service.accounts.store import AccountStore
from service.db.engine import Database
from service.db.migrate import upgrade_async
from service.runtime.embedded_redis import EmbeddedRedis, free_port
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BENCH_HANDLE = "bench"
DatabaseKind = Literal["sqlite", "postgres"]


@dataclass
class ManagedProcess:
    """One child process, its log file, and psutil's view of it."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _psutil: psutil.Process | None = field(default=None, repr=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started_at = time.monotonic()
        self._psutil = psutil.Process(self.popen.pid)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def target(self) -> psutil.Process | None:
        return self._psutil if self.alive() else None

    def rss_bytes(self) -> int:
        process = self.target()
        return 0 if process is None else int(process.memory_info().rss)

    def cpu_seconds(self) -> float:
        process = self.target()
        if process is None:
            return 0.0
        times = process.cpu_times()
        return float(times.user + times.system)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.alive():
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RelayProcesses:
    """Fresh database + private Redis + API process + worker processes, in test mode."""

    def __init__(
        self,
        *,
        workers: int = 1,
        database: DatabaseKind = "sqlite",
        settings: dict[str, Any] | None = None,
        redis_appendonly: bool = False,
        keep_directory: bool = False,
        worker_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.worker_count = workers
        self.database_kind = database
        self.overrides = dict(settings or {})
        self.redis_appendonly = redis_appendonly
        # BENCH_KEEP_DIRECTORY=1 keeps the logs and the database for a look afterwards.
        self.keep_directory = keep_directory or os.environ.get("BENCH_KEEP_DIRECTORY") == "1"
        self.worker_overrides = worker_overrides
        self.directory = Path(tempfile.mkdtemp(prefix="fedirelay-bench-"))
        self.postgres: PrivatePostgres | None = None
        self.redis_server = EmbeddedRedis(self.directory / "redis", appendonly=redis_appendonly)
        self.api: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self._worker_serial = 0
        self.settings: Settings
        self.database: Database
        self.redis: Redis
        self.queue: JobQueue
        self.handle = BENCH_HANDLE
        self.account_id = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RelayProcesses:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await asyncio.to_thread(self.redis_server.start)
        database_url = await asyncio.to_thread(self._create_database)
        port = free_port()
        values: dict[str, Any] = {
            "listen_host": "127.0.0.1",
            "listen_port": port,
            "base_url": f"http://127.0.0.1:{port}",
            "database_url": database_url,
            "redis_url": self.redis_server.url,
            "queue_name": "fedirelay-bench:queue",
            "admin_token": ADMIN_TOKEN,
            "test_mode": True,
            "data_dir": self.directory,
            "log_level": "WARNING",
            "log_format": "json",
            # Fleet inboxes share a handful of addresses: the bench measures the relay, so
            # the per-client inbox limit is raised unless a drill sets it.
            "inbox_rate_limit_per_second": 0.0,
        }
        values.update(self.overrides)
        self.settings = Settings(**values)
        await upgrade_async(database_url)
        self.database = Database(database_url)
        self.redis = Redis.from_url(self.redis_server.url)
        self.queue = await JobQueue.connect(self.redis_server.url, self.settings.queue_name)
        async with self.database.transaction() as session:
            account = await AccountStore(session).create(
                self.handle, display_name="Benchmark account"
            )
            self.account_id = account.id
        self.api = self._process("api", ["serve"])
        self.api.start()
        await self.wait_for_api()
        for _ in range(self.worker_count):
            await self.start_worker()

    def _create_database(self) -> str:
        if self.database_kind == "postgres":
            self.postgres = PrivatePostgres()
            self.postgres.initialise()
            self.postgres.start()
            return self.postgres.create_database("relay")
        return f"sqlite+aiosqlite:///{self.directory / 'relay.db'}"

    async def stop(self) -> None:
        for worker in self.workers:
            await asyncio.to_thread(worker.stop)
        if self.api is not None:
            await asyncio.to_thread(self.api.stop)
        if hasattr(self, "redis"):
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        if hasattr(self, "queue"):
            with contextlib.suppress(Exception):
                await self.queue.close()
        if hasattr(self, "database"):
            await self.database.dispose()
        await asyncio.to_thread(self.redis_server.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.destroy)
        if not self.keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- processes -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = settings_env(self.settings)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _process(self, name: str, arguments: list[str]) -> ManagedProcess:
        command = [sys.executable, "-m", "service.cli", *arguments]
        return ManagedProcess(name, command, self.env(), self.directory / f"{name}.log")

    async def wait_for_api(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        assert self.api is not None
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if not self.api.alive():
                    raise RuntimeError(f"API process exited:\n{self.api.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.base_url + "/livez") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"API did not answer /livez in {timeout}s:\n{self.api.log_tail()}")

    @property
    def health_check_key(self) -> str:
        return f"{self.settings.queue_name}:health-check:{socket.gethostname()}"

    async def start_worker(self, timeout: float = 30.0) -> ManagedProcess:  # noqa: ASYNC109
        """Start one more worker process and wait until it polls the queue."""
        self._worker_serial += 1
        worker = self._process(f"worker-{self._worker_serial}", ["worker"])
        if self.worker_overrides:
            worker.command = [sys.executable, "-m", "bench.worker_variant",
                              json.dumps(self.worker_overrides)]  # fmt: skip
        with contextlib.suppress(Exception):
            await self.redis.delete(self.health_check_key)
        worker.start()
        self.workers.append(worker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            with contextlib.suppress(Exception):
                if await self.redis.exists(self.health_check_key):
                    return worker
            await asyncio.sleep(0.05)
        raise RuntimeError(f"worker did not start in {timeout}s:\n{worker.log_tail()}")

    def kill_worker(self, index: int = 0) -> None:
        self.workers[index].kill()

    def live_workers(self) -> list[ManagedProcess]:
        return [worker for worker in self.workers if worker.alive()]

    def rss_bytes(self) -> dict[str, int]:
        processes = [self.api, *self.workers] if self.api else list(self.workers)
        return {p.name: p.rss_bytes() for p in processes if p is not None and p.alive()}

    # -- addresses -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def urls(self) -> InstanceUrls:
        return InstanceUrls(self.settings.base_url)

    @property
    def actor_url(self) -> str:
        return self.urls.account(self.handle).actor

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
