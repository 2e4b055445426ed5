"""Shared fixtures: a private Redis server, migrated SQLite and PostgreSQL databases, the app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from bench.harness.relay_harness import asgi_client
from service.app import create_app
from service.db.engine import Database
from service.runtime.embedded_redis import EmbeddedRedis
from service.runtime.settings import Settings
from tests.database_backends import (
    POSTGRES_ENV,
    create_postgres_database,
    create_sqlite_database,
    drop_postgres_database,
    postgres_admin_url,
    table_names_for_cleanup,
)


def forget_callers_settings() -> None:
    """Every setting a test uses comes from the test: a `FEDIRELAY_*` variable in the shell that
    runs the suite (say `FEDIRELAY_TEST_MODE=true` left from `make run`) would otherwise reach
    every `Settings()` and every relay process a test starts. Only the suite's own switch, the
    PostgreSQL URL, is kept."""
    for name in [name for name in os.environ if name.startswith("FEDIRELAY_")]:
        if name != POSTGRES_ENV:
            del os.environ[name]


# At import, before any test module is collected (xdist workers inherit the cleaned environment).
forget_callers_settings()

ADMIN_TOKEN = "test-admin-token-0123456789"
TEST_BASE_URL = "http://relay.test"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server private to this test session, so tests may FLUSHALL or kill it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return create_sqlite_database(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url = create_postgres_database(admin_url)
    yield url
    drop_postgres_database(admin_url, url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using the database runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_database_url"))
    return str(request.getfixturevalue("postgres_database_url"))


async def _clear(database: Database) -> None:
    async with database.transaction() as session:
        if database.is_sqlite:
            for name in table_names_for_cleanup():
                await session.execute(text(f'DELETE FROM "{name}"'))
        else:
            names = ", ".join(f'"{name}"' for name in table_names_for_cleanup())
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database (tables cleared before each test)."""
    db = Database(database_url)
    await _clear(db)
    yield db
    await db.dispose()


@pytest.fixture
def queue_name() -> str:
    return f"fedirelay-test:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(
    database: Database, redis_server: EmbeddedRedis, queue_name: str, tmp_path: Path
) -> Settings:
    return Settings(
        base_url=TEST_BASE_URL,
        database_url=database.url,
        redis_url=redis_server.url,
        queue_name=queue_name,
        admin_token=ADMIN_TOKEN,
        test_mode=True,
        data_dir=tmp_path,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (lifespan run)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        yield http


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
