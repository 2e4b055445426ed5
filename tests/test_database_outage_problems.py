"""While the database cannot be reached, the API answers 503 with Retry-After, not 500.

The database here is really unreachable: a SQLite file in a directory that does not exist,
and a PostgreSQL URL pointing at a loopback port where nothing listens.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.embedded_redis import free_port
from service.settings import Settings
from tests.relay_harness import asgi_client

ADMIN = {"Authorization": "Bearer outage-admin-token-0123456789abcdef"}


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        base_url="http://relay.test",
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        admin_token=ADMIN["Authorization"].removeprefix("Bearer "),
        test_mode=True,
        data_dir=tmp_path,
    )


async def _get_accounts(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        return await http.get("/api/admin/accounts", headers=ADMIN)


async def test_an_unreachable_sqlite_database_answers_503_problem_with_retry_after(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-directory" / "relay.db"
    response = await _get_accounts(_settings(tmp_path, f"sqlite+aiosqlite:///{missing}"))

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"].endswith("/database-unavailable")


async def test_a_postgresql_server_that_refuses_connections_answers_503(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/relay"
    response = await _get_accounts(_settings(tmp_path, url))

    assert response.status_code == 503
    assert "retry-after" in response.headers


@pytest.mark.parametrize(
    "path", ["/api/admin/posts", "/api/admin/monitoring/overview", "/api/admin/blocked-domains"]
)
async def test_other_admin_reads_answer_503_too(tmp_path: Path, path: str) -> None:
    missing = tmp_path / "absent" / "relay.db"
    settings = _settings(tmp_path, f"sqlite+aiosqlite:///{missing}")
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        response = await http.get(path, headers=ADMIN)

    assert response.status_code == 503
