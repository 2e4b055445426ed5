"""Structured logs: JSON lines carrying the ids of the work they describe, and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.relay_harness import asgi_client, running_worker
from federation.activitypub.urls import InstanceUrls
from service.accounts.store import active_key
from service.app import create_app
from service.db.engine import Database
from service.runtime.settings import Settings
from service.runtime.structured_logs import REDACTED, configure_logging, get_logger, log_context
from service.runtime.tasks import Task
from tests.conftest import ADMIN_TOKEN
from workers.task_functions import TaskFunction


def plain_settings(**changes: Any) -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, log_format="json", log_level="DEBUG", **changes)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(plain_settings(), stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    configure_logging(Settings())


async def worker_started(worker: Any) -> None:
    for _ in range(200):
        if "database" in worker.ctx:
            return
        await asyncio.sleep(0.025)
    raise TimeoutError("worker did not start")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_ids_bound_for_the_work_in_hand(json_logs: io.StringIO) -> None:
    with log_context(webhook_event_id=7, activity_id=42, delivery_id=1001, account="news"):
        get_logger("fedirelay.delivery").info("delivered", status=202)

    [line] = lines(json_logs)
    assert line["event"] == "delivered"
    assert line["status"] == 202
    assert line["level"] == "info"
    assert line["logger"] == "fedirelay.delivery"
    assert (line["webhook_event_id"], line["activity_id"], line["delivery_id"]) == (7, 42, 1001)
    assert line["account"] == "news"
    assert line["timestamp"].endswith("Z")


def test_standard_library_log_records_are_json_with_the_same_context(
    json_logs: io.StringIO,
) -> None:
    with log_context(activity_id=5):
        logging.getLogger("service.publishing.activity_records").warning(
            "enqueue of %s failed", "deliver_activity"
        )

    [line] = lines(json_logs)
    assert line["event"] == "enqueue of deliver_activity failed"
    assert line["level"] == "warning"
    assert line["activity_id"] == 5


def test_context_ends_with_its_block(json_logs: io.StringIO) -> None:
    with log_context(delivery_id=1):
        pass
    get_logger("x").info("after")

    [line] = [line for line in lines(json_logs) if line["event"] == "after"]
    assert "delivery_id" not in line


async def test_concurrent_tasks_do_not_see_each_others_ids(json_logs: io.StringIO) -> None:
    async def work(delivery_id: int) -> None:
        with log_context(delivery_id=delivery_id):
            await asyncio.sleep(0.01)
            get_logger("w").info("done", expected=delivery_id)

    await asyncio.gather(*(work(number) for number in range(20)))

    done = [line for line in lines(json_logs) if line["event"] == "done"]
    assert len(done) == 20
    assert all(line["delivery_id"] == line["expected"] for line in done)


def test_console_format_is_human_readable_and_keeps_the_ids() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="console"), stream=stream)
    try:
        with log_context(activity_id=3):
            get_logger("c").info("published")
    finally:
        configure_logging(Settings())

    output = stream.getvalue()
    assert "published" in output and "activity_id=3" in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


def test_tokens_and_private_keys_are_redacted_wherever_they_appear(
    json_logs: io.StringIO,
) -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    )
    log = get_logger("leaky")
    log.info("login", token=ADMIN_TOKEN)
    log.info(f"presented {ADMIN_TOKEN} in a message")
    log.info("key loaded", pem=pem, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    log.info("account", private_pem=pem)
    log.info("connect", url="postgresql+asyncpg://relay:hunter2secret@db:5432/relay")
    logging.getLogger("stdlib").error("bad key %s", pem)

    output = json_logs.getvalue()
    assert ADMIN_TOKEN not in output
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in output
    assert "hunter2secret" not in output
    assert output.count(REDACTED) >= 6


def test_exception_tracebacks_are_scrubbed(json_logs: io.StringIO) -> None:
    try:
        raise ValueError(f"token was {ADMIN_TOKEN}")
    except ValueError:
        logging.getLogger("boom").exception("failed")

    output = json_logs.getvalue()
    assert "ValueError" in output
    assert ADMIN_TOKEN not in output


async def test_a_worker_job_logs_with_its_job_id(settings: Settings) -> None:
    stream = io.StringIO()
    settings = settings.model_copy(update={"log_format": "json"})

    async def noisy_job(ctx: dict[str, Any], number: int) -> None:
        get_logger("job").info("inside the job")

    noisy = Task[int]("noisy_job")
    functions = [TaskFunction(noisy, noisy_job).arq_function()]
    queue = await connect_queue(settings)
    async with running_worker(settings, functions=functions, cron_jobs=[]) as worker:
        await worker_started(worker)
        configure_logging(settings, stream=stream)  # the worker's startup set stderr
        await queue.enqueue(noisy, 1, job_id="job-with-an-id")
        for _ in range(100):
            if "inside the job" in stream.getvalue():
                break
            await asyncio.sleep(0.05)
    await queue.close()
    configure_logging(Settings())

    [line] = [line for line in lines(stream) if line["event"] == "inside the job"]
    # Job ids are namespaced by the queue they run on.
    assert line["job_id"] == f"{settings.queue_name}:job-with-an-id"


async def test_a_real_fanout_with_debug_logs_never_writes_a_key_or_the_token(
    database: Database, settings: Settings
) -> None:
    from bench.harness.fleet import Fleet

    settings = fast_settings(settings, log_format="json", log_level="DEBUG")
    stream = io.StringIO()
    urls = InstanceUrls(settings.base_url)
    app = create_app(settings)
    configure_logging(settings, stream=stream)
    queue = await connect_queue(settings)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
            created = await http.post(
                "/api/admin/accounts", json={"handle": "blog"}, headers=headers
            )
            assert created.status_code == 201
            account = await create_account(database, "news")
            async with Fleet(hosts=2, followers=1) as fleet, running_worker(settings) as worker:
                await worker_started(worker)
                configure_logging(settings, stream=stream)  # the worker's startup set stderr
                trust_account_key(fleet, account, urls)
                await follow_from_fleet(database, account, fleet)
                published = await publish(database, account, note_activity(urls, account), queue)
                await wait_until_finished(database, published.activity_row_id)
            await http.get("/api/admin/monitoring/queue", headers=headers)
    finally:
        await queue.close()
        configure_logging(Settings())

    output = stream.getvalue()
    body = active_key(account, "rsa").private_pem.splitlines()[1]
    assert output.strip(), "expected some log output at DEBUG"
    assert ADMIN_TOKEN not in output
    assert body not in output
    assert "PRIVATE KEY" not in output
