"""A PostgreSQL cluster private to one benchmark or drill, so it can be stopped and restarted.

The machine's shared cluster serves other people's tests and must never be restarted; this
one lives in a temporary directory, listens on a free loopback port and trusts local
connections. PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from service.runtime.embedded_redis import free_port

POSTGRES_BIN = Path(os.environ.get("FEDIRELAY_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def postgres_available() -> bool:
    return (POSTGRES_BIN / "initdb").exists() and (POSTGRES_BIN / "pg_ctl").exists()


class PrivatePostgres:
    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fedirelay-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None

    def _command(self, *arguments: str) -> list[str]:
        if self._run_as is None:
            return list(arguments)
        return ["runuser", "-u", self._run_as, "--", *arguments]

    def _run(self, *arguments: str, timeout: float = 60.0) -> None:
        subprocess.run(  # noqa: S603
            self._command(*arguments),
            check=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def cpu_seconds(self) -> float:
        """CPU of the whole cluster so far: the server, its live backends, and the backends
        that have exited (which the server has waited for)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            server = psutil.Process(int(pid_file.read_text().split()[0]))
            times = server.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in server.children():
                with contextlib.suppress(psutil.Error):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
        except (OSError, ValueError, IndexError, psutil.Error):
            return 0.0
        return float(total)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def initialise(self) -> None:
        if self._run_as is not None:
            account = pwd.getpwnam(self._run_as)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(
            str(POSTGRES_BIN / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--auth=trust",
            "--no-sync",
            "-E", "UTF8",
        )  # fmt: skip
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 128MB\n"
            )

    def start(self, timeout: float = 30.0) -> None:
        self._run(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        self.wait_until_accepting(timeout)

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def wait_until_accepting(self, timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"private PostgreSQL did not listen on {self.port}")

    def create_database(self, name: str) -> str:
        self._run(
            str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", "postgres", name,
        )  # fmt: skip
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.initialise()
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.destroy()
