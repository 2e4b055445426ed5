"""While the database cannot be reached, the API answers 503 with Retry-After, not 500.

The relay starts with a working database, which then really goes away: a SQLite file whose
directory is moved aside (with the connection pool emptied, so new connections must open the
file), and a private PostgreSQL cluster that is stopped (never the machine's shared one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bench.harness.private_postgres import PrivatePostgres, postgres_available
from bench.harness.relay_harness import asgi_client
from service.accounts.store import AccountStore
from service.app import create_app
from service.db.migrate import upgrade_async
from service.db.models import Account
from service.runtime.embedded_redis import free_port
from service.runtime.settings import Settings

ADMIN = {"Authorization": "Bearer outage-admin-token-0123456789abcdef"}
ADMIN_READS = ["/api/admin/accounts", "/api/admin/posts", "/api/admin/blocked-domains"]


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        base_url="http://relay.test",
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        admin_token=ADMIN["Authorization"].removeprefix("Bearer "),
        test_mode=True,
        data_dir=tmp_path,
    )


@asynccontextmanager
async def _relay_losing_its_database(
    settings: Settings, take_away: Callable[[FastAPI], Awaitable[None]]
) -> AsyncIterator[httpx.AsyncClient]:
    await upgrade_async(settings.effective_database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        assert (await http.get("/api/admin/accounts", headers=ADMIN)).status_code == 200
        await take_away(app)
        yield http


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"].endswith("/database-unavailable")


@pytest.mark.parametrize("path", ADMIN_READS)
async def test_a_sqlite_file_that_cannot_be_opened_answers_503(tmp_path: Path, path: str) -> None:
    directory = tmp_path / "data"
    directory.mkdir()

    async def move_the_file_away(app: FastAPI) -> None:
        directory.rename(tmp_path / "moved")
        await app.state.database.engine.dispose()

    url = f"sqlite+aiosqlite:///{directory / 'relay.db'}"
    async with _relay_losing_its_database(_settings(tmp_path, url), move_the_file_away) as http:
        _assert_unavailable(await http.get(path, headers=ADMIN))


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL server binaries not installed")
async def test_a_stopped_postgresql_server_answers_503(tmp_path: Path) -> None:
    with PrivatePostgres() as postgres:
        url = postgres.create_database("relay")

        async def stop_the_server(_app: FastAPI) -> None:
            postgres.stop("fast")

        async with _relay_losing_its_database(_settings(tmp_path, url), stop_the_server) as http:
            for path in ADMIN_READS:
                _assert_unavailable(await http.get(path, headers=ADMIN))


async def test_a_row_changed_by_another_request_meanwhile_is_a_409_problem(
    tmp_path: Path,
) -> None:
    """An UPDATE that finds its row gone (deleted by a concurrent request) is a conflict."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    await upgrade_async(url)
    settings = _settings(tmp_path, url)
    app = create_app(settings)

    async def update_a_deleted_account() -> None:
        async with app.state.database.transaction() as session:
            account = await AccountStore(session).create("gone")
            # Deleted behind the session's back, as another request's transaction would.
            await session.execute(
                delete(Account).where(Account.id == account.id),
                execution_options={"synchronize_session": False},
            )
            account.display_name = "too late"
            await session.flush()

    app.add_api_route("/api/admin/race", update_a_deleted_account, methods=["POST"])
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        response = await http.post("/api/admin/race", headers=ADMIN)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/concurrent-change")


@pytest.mark.postgres
async def test_a_request_failed_to_break_a_deadlock_is_a_409_problem(
    tmp_path: Path, postgres_database_url: str
) -> None:
    """PostgreSQL fails one of two transactions waiting on each other; that request changed
    nothing and may be sent again."""
    settings = _settings(tmp_path, postgres_database_url)
    app = create_app(settings)

    async def rename(session: AsyncSession, handle: str) -> None:
        await session.execute(
            update(Account).where(Account.handle == handle).values(display_name=handle)
        )

    async def deadlock() -> None:
        database = app.state.database
        async with database.transaction() as session:
            await session.execute(delete(Account).where(Account.handle.in_(["a", "b"])))
            for handle in ("a", "b"):
                await AccountStore(session).create(handle)
        async with database.transaction() as first, database.transaction() as second:
            await rename(first, "a")
            await rename(second, "b")
            outcomes = await asyncio.gather(
                rename(first, "b"), rename(second, "a"), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    app.add_api_route("/api/admin/deadlock", deadlock, methods=["POST"])
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        response = await http.post("/api/admin/deadlock", headers=ADMIN)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/concurrent-change")
