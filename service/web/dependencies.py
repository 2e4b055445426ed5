"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings
from service.web.dashboard.session import SESSION_COOKIE, read_session
from service.web.problems import Problem


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_queue(request: Request) -> JobQueue | None:
    queue: JobQueue | None = request.app.state.queue
    return queue


async def get_urls(request: Request) -> InstanceUrls:
    urls: InstanceUrls = request.app.state.urls
    return urls


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits when the handler returns without raising."""
    database: Database = request.app.state.database
    async with database.sessionmaker() as session, session.begin():
        yield session


def admin_token_matches(settings: Settings, presented: str | None) -> bool:
    if not settings.admin_token or not presented:
        return False
    return hmac.compare_digest(presented.encode(), settings.admin_token.encode())


async def require_admin(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if not settings.admin_token:
        raise Problem(
            403, "The admin API is disabled: set FEDIRELAY_ADMIN_TOKEN", type_="admin-disabled"
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and admin_token_matches(settings, token.strip()):
        return
    # A dashboard session (signed cookie, never the token) may read the admin API; changes
    # through the API need the bearer token, so a cookie alone can never be used for CSRF.
    cookie = request.cookies.get(SESSION_COOKIE)
    if request.method in ("GET", "HEAD") and read_session(settings, cookie) is not None:
        return
    raise Problem(
        401,
        "A valid admin bearer token is required",
        type_="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="fedirelay"'},
    )


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
UrlsDep = Annotated[InstanceUrls, Depends(get_urls)]
QueueDep = Annotated[JobQueue | None, Depends(get_queue)]
DatabaseDep = Annotated[Database, Depends(get_database)]
AdminDep = Depends(require_admin)


# Database ids are 64-bit; a larger number in a URL is a client error, not a driver overflow.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
OptionalRowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
