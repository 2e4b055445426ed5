"""Webhook ingest under trouble (the database or Redis away) and at shutdown.

The PostgreSQL tests run a private cluster (bench/harness/private_postgres.py), since the shared one
must never be stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis

from bench.harness.private_postgres import PrivatePostgres, postgres_available
from bench.harness.relay_harness import asgi_client
from bench.harness.webhook_senders import cms_body, row_counts, send_cms, with_webhook_secrets
from service.app import create_app
from service.db.migrate import upgrade_async
from service.runtime.embedded_redis import EmbeddedRedis
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not installed")
    with PrivatePostgres() as cluster:
        yield cluster


@pytest.fixture
async def postgres_app_client(
    private_postgres: PrivatePostgres, redis_server: EmbeddedRedis, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    url = private_postgres.create_database(f"ingest_{uuid.uuid4().hex[:8]}")
    await upgrade_async(url)
    settings = with_webhook_secrets(
        Settings(
            base_url="http://relay.test",
            database_url=url,
            redis_url=redis_server.url,
            queue_name=f"fedirelay-test:{uuid.uuid4().hex[:8]}",
            test_mode=True,
            data_dir=tmp_path,
        )
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        yield http


def _start_again(cluster: PrivatePostgres) -> None:
    with contextlib.suppress(Exception):
        cluster.start()


async def test_webhook_answers_503_with_retry_after_while_postgres_is_down(
    postgres_app_client, private_postgres
):
    assert (await send_cms(postgres_app_client, cms_body())).status_code == 202
    await asyncio.to_thread(private_postgres.stop, "fast")
    try:
        # The first finds its pooled connection dead, the second cannot connect at all.
        responses = [await send_cms(postgres_app_client, cms_body()) for _ in range(2)]
    finally:
        await asyncio.to_thread(_start_again, private_postgres)
    assert [response.status_code for response in responses] == [503, 503]
    for response in responses:
        assert response.headers["content-type"] == PROBLEM
        assert int(response.headers["retry-after"]) > 0


async def test_webhooks_are_accepted_again_after_postgres_restarts(
    postgres_app_client, private_postgres
):
    assert (await send_cms(postgres_app_client, cms_body())).status_code == 202
    await asyncio.to_thread(private_postgres.stop, "fast")
    await asyncio.to_thread(private_postgres.start)
    statuses = []
    for _ in range(5):
        statuses.append((await send_cms(postgres_app_client, cms_body())).status_code)
        if statuses[-1] == 202:
            break
    # The pooled connections died with the server: at most the first request finds out.
    assert statuses[-1] == 202
    assert set(statuses) <= {202, 503}
    assert len(statuses) <= 2


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> int:
        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *_exc: object) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_accepting_a_webhook_does_not_wait_for_a_hung_redis(settings, database):
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        asgi_client(app, settings.base_url) as http,
        SilentServer() as port,
    ):
        hung = ArqRedis(host="127.0.0.1", port=port, socket_connect_timeout=2)
        real_queue, app.state.queue = app.state.queue, JobQueue(hung, settings.queue_name)
        try:
            started = time.monotonic()
            responses = await asyncio.wait_for(
                asyncio.gather(*(send_cms(http, cms_body(source_id=f"s{i}")) for i in range(3))),
                timeout=10,
            )
            elapsed = time.monotonic() - started
        finally:
            app.state.queue = real_queue
            await hung.aclose()
    assert [response.status_code for response in responses] == [202, 202, 202]
    assert elapsed < 2
    assert (await row_counts(database))["webhook_events"] == 3


async def test_shutdown_stops_the_sqlite_writer_thread(settings, database):
    if not database.is_sqlite:
        pytest.skip("the writer thread is for SQLite files")
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        assert (await send_cms(http, cms_body())).status_code == 202
        threads = [t for t in threading.enumerate() if t.name.startswith("webhook-writer")]
        assert threads
    for thread in threads:
        thread.join(timeout=5)
    assert not [thread for thread in threads if thread.is_alive()]
