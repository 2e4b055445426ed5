"""The operations dashboard at /ops: server-rendered pages behind a signed session cookie.

Reading needs a session (login with the admin token). Every change is a POST form carrying a
CSRF token tied to the session, from our own origin, and calls the same function as the
admin API does; nothing here re-implements an action.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.reporting import queries
from service.runtime.settings import Settings
from service.web.dashboard import actions, views
from service.web.dashboard.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    AdminSession,
    csrf_matches,
    csrf_token,
    issue_session,
    login_csrf,
    login_csrf_matches,
    new_login_nonce,
    read_session,
)
from service.web.dependencies import (
    DatabaseDep,
    QueueDep,
    RowId,
    SessionDep,
    SettingsDep,
    UrlsDep,
    admin_token_matches,
)
from service.web.page_templates import templates
from service.web.problems import Problem

router = APIRouter(prefix="/ops", include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES = {"ops.css": "text/css", "ops.js": "text/javascript"}
REFRESH_SECONDS = 10
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class LoginRequired(Exception):
    pass


def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on our own
    # form posts, which the origin check must refuse.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _secure_cookies(settings: Settings) -> bool:
    # Browsers drop Secure cookies on plain-http origins other than localhost; plain http is
    # only ever used in development and tests.
    return settings.base_url.startswith("https://")


def _enabled(settings: Settings) -> None:
    if not settings.admin_token:
        raise Problem(
            403, "The dashboard is disabled: set FEDIRELAY_ADMIN_TOKEN", type_="admin-disabled"
        )


def _session(request: Request, settings: SettingsDep) -> AdminSession:
    _enabled(settings)
    session = read_session(settings, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired
    return session


DashboardSession = Annotated[AdminSession, Depends(_session)]


def _same_origin(request: Request, settings: Settings) -> bool:
    """Browsers send Origin on POST; when present it must be ours."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = urlsplit(settings.base_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def _action_session(
    request: Request, settings: SettingsDep, csrf: Annotated[str, Form()] = ""
) -> AdminSession:
    session = _session(request, settings)
    if not _same_origin(request, settings) or not csrf_matches(settings, session, csrf):
        raise Problem(
            403, "The form is stale or comes from elsewhere; reload the page", type_="csrf"
        )
    return session


ActionSession = Annotated[AdminSession, Depends(_action_session)]


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    response = templates.TemplateResponse(
        request,
        name,
        {**views.template_globals(), **context},
        status_code=status_code,
    )
    return _harden(response)


def _back(anchor: str, code: str, count: int | None = None, detail: str | None = None) -> Response:
    query: dict[str, str] = {"done": code}
    if count is not None:
        query["n"] = str(count)
    if detail:
        query["detail"] = detail
    return _harden(RedirectResponse(f"/ops?{urlencode(query)}#{anchor}", status_code=303))


def login_redirect(_request: Request, _exc: Exception) -> Response:
    return _harden(RedirectResponse("/ops/login", status_code=303))


# --- pages ---------------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise Problem(404, "No such file", type_="not-found")
    response = FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name])
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/login")
async def login_page(request: Request, settings: SettingsDep, failed: bool = False) -> Response:
    _enabled(settings)
    nonce = new_login_nonce()
    response = _render(
        request,
        "ops/login.html",
        {"csrf": login_csrf(settings, nonce), "failed": failed, "login_page": True},
        status_code=401 if failed else 200,
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=900, path="/ops/login", httponly=True,
        secure=_secure_cookies(settings), samesite="strict",
    )  # fmt: skip
    return response


@router.post("/login")
async def login(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    _enabled(settings)
    if not _same_origin(request, settings) or not login_csrf_matches(
        settings, request.cookies.get(LOGIN_COOKIE), csrf
    ):
        raise Problem(403, "The login form is stale; reload it", type_="csrf")
    if not admin_token_matches(settings, token):
        return _harden(RedirectResponse("/ops/login?failed=true", status_code=303))
    response = _harden(RedirectResponse("/ops", status_code=303))
    response.set_cookie(
        SESSION_COOKIE, issue_session(settings), max_age=SESSION_SECONDS, path="/",
        httponly=True, secure=_secure_cookies(settings), samesite="strict",
    )  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/ops/login")
    return response


@router.post("/logout")
async def logout(_session: ActionSession) -> Response:
    response = _harden(RedirectResponse("/ops/login", status_code=303))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("")
async def dashboard(
    request: Request,
    admin: DashboardSession,
    settings: SettingsDep,
    session: SessionDep,
    done: str | None = None,
    n: str | None = None,
    detail: str | None = None,
) -> Response:
    view = await views.overview(session)
    return _render(
        request,
        "ops/overview.html",
        {
            "view": view,
            "csrf": csrf_token(settings, admin),
            "notice": views.notice_text(done, n, detail),
            "failed": done == "failed",
            "refresh_seconds": REFRESH_SECONDS,
            "now": datetime.now(UTC),
        },
    )


@router.get("/posts/{post_id}")
async def post_page(
    request: Request,
    post_id: RowId,
    admin: DashboardSession,
    settings: SettingsDep,
    session: SessionDep,
) -> Response:
    report = await queries.post_report(session, post_id)
    if report is None:
        raise Problem(404, f"No post {post_id}", type_="unknown-post")
    return _render(
        request,
        "ops/post.html",
        {"report": report, "csrf": csrf_token(settings, admin), "refresh_seconds": REFRESH_SECONDS},
    )


# --- actions -------------------------------------------------------------------------------


@router.post("/actions/dead-letters/retry")
async def retry_dead_letters(
    _admin: ActionSession,
    database: DatabaseDep,
    queue: QueueDep,
    delivery_id: Annotated[int | None, Form()] = None,
    host: Annotated[str | None, Form(max_length=255)] = None,
    everything: Annotated[bool, Form(alias="all")] = False,
) -> Response:
    result = await actions.retry_dead_letters(
        database, queue, delivery_id=delivery_id, host=host or None, everything=everything
    )
    return _back("dead-letters", result.code, result.count, result.detail)


@router.post("/actions/webhooks/retry")
async def retry_webhooks(
    _admin: ActionSession,
    database: DatabaseDep,
    queue: QueueDep,
    event_id: Annotated[int | None, Form()] = None,
    everything: Annotated[bool, Form(alias="all")] = False,
) -> Response:
    result = await actions.retry_webhooks(database, queue, event_id=event_id, everything=everything)
    return _back("webhooks", result.code, result.count, result.detail)


@router.post("/actions/dead-letters/discard")
async def discard_dead_letters(
    _admin: ActionSession,
    database: DatabaseDep,
    delivery_id: Annotated[int | None, Form()] = None,
    host: Annotated[str | None, Form(max_length=255)] = None,
) -> Response:
    result = await actions.discard_dead_letters(
        database, delivery_id=delivery_id, host=host or None
    )
    return _back("dead-letters", result.code, result.count, result.detail)


@router.post("/actions/hosts/{host}/{change}")
async def change_host(
    host: str, change: str, _admin: ActionSession, database: DatabaseDep, queue: QueueDep
) -> Response:
    if change not in ("pause", "resume"):
        raise Problem(404, "Unknown host action", type_="not-found")
    result = await actions.set_host_paused(database, queue, host, change == "pause")
    return _back("hosts", result.code, None, result.detail)


@router.post("/actions/accounts/{handle}/{change}")
async def change_account(
    handle: str, change: str, _admin: ActionSession, database: DatabaseDep, queue: QueueDep
) -> Response:
    if change not in ("pause", "resume"):
        raise Problem(404, "Unknown account action", type_="not-found")
    result = await actions.set_account_paused(database, queue, handle, change == "pause")
    return _back("accounts", result.code, None, result.detail)


@router.post("/actions/scheduled/{post_id}/cancel")
async def cancel_scheduled(
    post_id: RowId, _admin: ActionSession, database: DatabaseDep
) -> Response:
    result = await actions.cancel_post(database, post_id)
    return _back("scheduled", result.code, None, result.detail)


@router.post("/actions/scheduled/{post_id}/reschedule")
async def reschedule(
    post_id: RowId,
    _admin: ActionSession,
    database: DatabaseDep,
    queue: QueueDep,
    when: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    result = await actions.reschedule_post(database, queue, post_id, when)
    return _back("scheduled", result.code, None, result.detail)


@router.post("/actions/follows/{follower_id}/{answer}")
async def answer_follow(
    follower_id: RowId,
    answer: str,
    _admin: ActionSession,
    session: SessionDep,
    urls: UrlsDep,
    queue: QueueDep,
) -> Response:
    if answer not in ("approve", "reject"):
        raise Problem(404, "Unknown follow action", type_="not-found")
    result = await actions.answer_follow(session, urls, queue, follower_id, answer)
    return _back("follows", result.code, None, result.detail)
