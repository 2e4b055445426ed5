"""Webhook endpoints: the CMS (Standard Webhooks), Ghost, Forgejo/Gitea and GitHub.

Each one authenticates the raw body, interprets it and keys it as its sender's declaration in
service/webhooks/sources.py says, stores the raw delivery (unique per source and delivery
key) and answers 202; a worker renders and publishes. A redelivery answers 200 with the
earlier outcome. `dry_run` (a body field for the CMS, a `?dry_run=true` query parameter for
every source) answers with what would be published instead.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from federation.activitypub.urls import InstanceUrls
from federation.sources.events import IgnoredEvent, PayloadError, SourceEvent
from federation.sources.webhook_signatures import WebhookSignatureError
from service.db.engine import Database
from service.publishing.preview import preview_events
from service.runtime.settings import Settings
from service.web.problems import Problem, validation_problem
from service.webhooks.intake import kept_headers, store_webhook_event
from service.webhooks.schemas import CmsEvent, WebhookAnswer, inline_json_schema
from service.webhooks.sources import (
    CMS_SOURCE,
    FORGEJO_SOURCE,
    GHOST_SOURCE,
    GITHUB_SOURCE,
    InterpretedDelivery,
    MalformedJson,
    WebhookSource,
)

router = APIRouter(prefix="/hooks", tags=["webhooks"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookAnswer, "description": "A redelivery: the earlier outcome."},
    401: {"description": "Missing or wrong signature, or a stale timestamp."},
    400: {"description": "The body is not JSON (or a form without a JSON `payload` field)."},
    413: {"description": "The body is larger than the webhook limit."},
    422: {"description": "The body violates the schema; `errors` names the fields."},
}


def _settings(request: Request) -> Settings:
    # Read from the app state directly: FastAPI would run sync dependencies in a thread.
    settings: Settings = request.app.state.settings
    return settings


def _dry_run_requested(request: Request) -> bool:
    if not request.scope.get("query_string"):
        return False  # the usual case, without parsing an empty query string
    return request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")


def _schema_problem(exc: PayloadError) -> Problem:
    return Problem(
        422,
        f"Payload failed validation: {exc.field}",
        type_="validation-error",
        title="Invalid payload",
        errors=[{"name": exc.field, "reason": exc.reason}],
    )


def _ignored(reason: str) -> JSONResponse:
    return JSONResponse({"status": "ignored", "reason": reason}, status_code=202)


def _interpret(
    source: WebhookSource, event_name: str, document: bytes, settings: Settings
) -> InterpretedDelivery:
    try:
        return source.interpret(event_name, document, settings)
    except MalformedJson as exc:
        raise Problem(400, "Body is not valid JSON", type_="malformed-json") from exc
    except ValidationError as exc:
        raise validation_problem([dict(error) for error in exc.errors()]) from exc
    except PayloadError as exc:
        raise _schema_problem(exc) from exc


async def _receive(request: Request, source: WebhookSource) -> JSONResponse:
    settings = _settings(request)
    body = await request.body()
    headers = request.headers
    try:
        document = source.authenticate(headers, body, settings, time.time())
    except WebhookSignatureError as exc:
        raise Problem(401, exc.reason, type_="invalid-signature") from exc
    delivery = _interpret(source, source.event_name(headers), document, settings)
    if isinstance(delivery.events, IgnoredEvent):
        return _ignored(delivery.events.reason)
    state = request.app.state
    database: Database = state.database
    if delivery.dry_run or _dry_run_requested(request):
        return await _dry_run(database, state.urls, delivery.events)
    stored = await store_webhook_event(
        state,
        database,
        source=source.name,
        key=source.delivery_key(headers, document),
        event_type=delivery.event_type,
        headers=kept_headers(request.headers.raw),
        body=document,
    )
    if stored.duplicate:
        answer = WebhookAnswer(status=stored.state, event_id=stored.event_id, result=stored.result)
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=200)
    return JSONResponse({"status": "accepted", "event_id": stored.event_id}, status_code=202)


async def _dry_run(
    database: Database, urls: InstanceUrls, events: list[SourceEvent]
) -> JSONResponse:
    async with database.session() as session:
        previews = await preview_events(session, urls, events)
    return JSONResponse({"status": "dry_run", "previews": previews}, status_code=200)


@router.post(
    "/cms",
    status_code=202,
    response_model=WebhookAnswer,
    responses=_ANSWERS,
    summary="A CMS post was published, updated or unpublished (Standard Webhooks)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_json_schema(CmsEvent)}},
        }
    },
)
async def cms_hook(request: Request) -> JSONResponse:
    return await _receive(request, CMS_SOURCE)


@router.post("/ghost", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def ghost_hook(request: Request) -> JSONResponse:
    """A Ghost `post.*`/`page.*` webhook, signed with `X-Ghost-Signature`."""
    return await _receive(request, GHOST_SOURCE)


@router.post("/forgejo", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def forgejo_hook(request: Request) -> JSONResponse:
    """A Forgejo or Gitea webhook: releases and tag creation."""
    return await _receive(request, FORGEJO_SOURCE)


@router.post("/github", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def github_hook(request: Request) -> JSONResponse:
    """A GitHub webhook: releases, tag creation, stars (and their milestones)."""
    return await _receive(request, GITHUB_SOURCE)
