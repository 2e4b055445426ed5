"""RFC 9457 problem details: every error the relay returns to a client has this shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

if TYPE_CHECKING:
    # The worker raises Problem too (shared validation code) but never answers HTTP:
    # importing the web framework there would cost it about 10 MB.
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://fedirelay.dev/problems/"
DATABASE_RETRY_AFTER_SECONDS = 5
# The database is unreachable, restarting or out of connections: the client's request was
# fine and may simply be sent again. ConnectionError covers a refused or reset connection
# that a driver raises without wrapping it.
DATABASE_UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    ConnectionError,
)

# PostgreSQL failed the transaction to resolve a conflict with another one (a deadlock, a
# serialization failure): nothing was changed, and the request may be sent again.
CONCURRENCY_SQLSTATES = frozenset({"40P01", "40001"})


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = PROBLEM_TYPE_BASE + type_ if type_ else "about:blank"
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    invalid = [
        {"name": _field_path(error.get("loc", ())), "reason": error.get("msg", "invalid")}
        for error in errors
    ]
    names = ", ".join(item["name"] for item in invalid[:5])
    return Problem(
        422,
        f"Request failed validation: {names}",
        type_="validation-error",
        title="Invalid request",
        errors=invalid,
    )


def install_problem_handlers(app: FastAPI) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            return problem_response(
                Problem(400, "Body is not valid JSON", type_="malformed-json"), request.url.path
            )
        return problem_response(validation_problem(errors), request.url.path)

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        problem = Problem(
            503,
            "The database is unavailable; retry later",
            type_="database-unavailable",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
        return problem_response(problem, request.url.path)

    for error_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_class, _database_unavailable)

    @app.exception_handler(StaleDataError)
    async def _concurrent_change(request: Request, exc: Exception) -> JSONResponse:
        # The row was deleted or changed by another request between our read and our write
        # (or the database broke a deadlock between two requests by failing this one).
        problem = Problem(
            409,
            "The resource was changed or deleted by another request; read it again",
            type_="concurrent-change",
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(DBAPIError)
    async def _driver_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A pooled connection the server closed (restart, failover) surfaces as a plain
        # DBAPIError marked invalidated; any other driver error is a bug: a 500.
        if exc.connection_invalidated:
            return await _database_unavailable(request, exc)
        if getattr(exc.orig, "sqlstate", None) in CONCURRENCY_SQLSTATES:
            return await _concurrent_change(request, exc)
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(Problem(exc.status_code, detail, headers=headers), request.url.path)
