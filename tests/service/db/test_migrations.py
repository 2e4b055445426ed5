"""Migrations build the schema from an empty database, match the models, and roll back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.migrate import downgrade, upgrade
from service.db.models import Base
from tests.database_backends import (
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL tests need FEDIRELAY_TEST_POSTGRES_URL")
    # create_postgres_database migrates; roll back to empty to test from scratch.
    url = create_postgres_database(admin)
    downgrade(url, "base")
    yield url
    drop_postgres_database(admin, url)


def _inspect(url: str, fn):
    async def run():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_from_empty_creates_every_table(empty_database_url):
    upgrade(empty_database_url)
    tables = set(_inspect(empty_database_url, lambda c: inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables


def test_migrated_schema_matches_the_models(empty_database_url):
    upgrade(empty_database_url)

    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, Base.metadata)

    assert _inspect(empty_database_url, differences) == []


def test_downgrade_to_base_removes_every_table(empty_database_url):
    upgrade(empty_database_url)
    downgrade(empty_database_url, "base")
    tables = set(_inspect(empty_database_url, lambda c: inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}


def test_upgrade_twice_is_a_no_op(empty_database_url):
    upgrade(empty_database_url)
    upgrade(empty_database_url)
    tables = set(_inspect(empty_database_url, lambda c: inspect(c).get_table_names()))
    assert "accounts" in tables


def test_webhook_events_stored_before_the_retry_columns_start_with_no_attempts(
    empty_database_url,
):
    upgrade(empty_database_url, "0003_instance_actor")

    async def store_event() -> None:
        engine = create_async_engine(empty_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO webhook_events (source, delivery_key, event_type, headers,"
                        " body, state) VALUES ('cms', 'k', 'published', '{}', :body, 'received')"
                    ),
                    {"body": b"{}"},
                )
        finally:
            await engine.dispose()

    asyncio.run(store_event())
    upgrade(empty_database_url)

    def read(connection):
        return connection.execute(
            text("SELECT attempts, next_attempt_at FROM webhook_events")
        ).one()

    assert tuple(_inspect(empty_database_url, read)) == (0, None)
