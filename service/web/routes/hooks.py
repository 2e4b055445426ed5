"""Webhook endpoints: the CMS (Standard Webhooks), Ghost, Forgejo/Gitea and GitHub.

Each one authenticates the raw body, parses it, stores the raw delivery (unique per source and
delivery id) and answers 202; a worker renders and publishes. A redelivery answers 200 with the
earlier outcome. `dry_run` (a body field for the CMS, a `?dry_run=true` query parameter for
every source) answers with what would be published instead.

The forge endpoints also take form-encoded bodies (the JSON in a `payload` field); the JSON is
what is stored, so the worker reads every delivery the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from federation.activitypub.urls import InstanceUrls
from federation.sources.events import IgnoredEvent, ParsedWebhook, PayloadError, SourceEvent
from federation.sources.forge_events import FORGEJO, GITHUB, parse_forge_event
from federation.sources.ghost_events import GHOST, parse_ghost_event
from federation.sources.webhook_signatures import (
    WebhookSignatureError,
    verify_forge_webhook,
    verify_ghost_webhook,
    verify_github_webhook,
    verify_standard_webhook,
)
from service.db.engine import Database
from service.publishing.preview import preview_events
from service.runtime.settings import Settings
from service.web.problems import Problem, validation_problem
from service.webhooks.forms import form_payload, is_form
from service.webhooks.intake import (
    body_digest_key,
    delivery_key,
    kept_headers,
    parse_json_body,
    store_webhook_event,
)
from service.webhooks.schemas import (
    CMS_EVENTS,
    CmsEvent,
    WebhookAnswer,
    cms_source_event,
    inline_json_schema,
)

router = APIRouter(prefix="/hooks", tags=["webhooks"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookAnswer, "description": "A redelivery: the earlier outcome."},
    401: {"description": "Missing or wrong signature, or a stale timestamp."},
    400: {"description": "The body is not JSON (or a form without a JSON `payload` field)."},
    413: {"description": "The body is larger than the webhook limit."},
    422: {"description": "The body violates the schema; `errors` names the fields."},
}


def _authentic(check: Any, **arguments: Any) -> None:
    try:
        check(**arguments)
    except WebhookSignatureError as exc:
        raise Problem(401, exc.reason, type_="invalid-signature") from exc


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


async def _accept(
    request: Request,
    *,
    source: str,
    key: str,
    event_type: str,
    body: bytes,
    parsed: ParsedWebhook,
    dry_run: bool,
) -> JSONResponse:
    if isinstance(parsed, IgnoredEvent):
        return _ignored(parsed.reason)
    state = request.app.state
    database: Database = state.database
    if dry_run:
        return await _dry_run(database, state.urls, parsed)
    stored = await store_webhook_event(
        state,
        database,
        source=source,
        key=key,
        event_type=event_type,
        headers=kept_headers(request.headers.raw),
        body=body,
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
async def cms_hook(
    request: Request,
) -> JSONResponse:
    settings = _settings(request)
    body = await request.body()
    headers = request.headers
    _authentic(
        verify_standard_webhook,
        secrets=settings.cms_secret_list,
        message_id=headers.get("webhook-id"),
        timestamp=headers.get("webhook-timestamp"),
        signature_header=headers.get("webhook-signature"),
        body=body,
        now=time.time(),
    )
    payload = parse_json_body(body)
    if isinstance(payload, Mapping):
        event_name = payload.get("event")
        if isinstance(event_name, str) and event_name not in CMS_EVENTS:
            return _ignored(f"event type '{event_name[:64]}' is not one of {', '.join(CMS_EVENTS)}")
    try:
        cms_event = CmsEvent.model_validate(payload)
    except ValidationError as exc:
        raise validation_problem([dict(error) for error in exc.errors()]) from exc
    return await _accept(
        request,
        source="cms",
        key=delivery_key(headers.get("webhook-id"), body),
        event_type=cms_event.event,
        body=body,
        parsed=[cms_source_event(cms_event)],
        dry_run=cms_event.dry_run or _dry_run_requested(request),
    )


@router.post("/ghost", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def ghost_hook(
    request: Request,
) -> JSONResponse:
    """A Ghost `post.*`/`page.*` webhook, signed with `X-Ghost-Signature`."""
    settings = _settings(request)
    body = await request.body()
    _authentic(
        verify_ghost_webhook,
        secret=settings.ghost_webhook_secret,
        signature_header=request.headers.get("x-ghost-signature"),
        body=body,
        now=time.time(),
    )
    try:
        parsed = parse_ghost_event(parse_json_body(body))
    except PayloadError as exc:
        raise _schema_problem(exc) from exc
    event_type = f"post.{parsed[0].action}" if isinstance(parsed, list) else "ignored"
    return await _accept(
        request,
        source=GHOST,
        key=body_digest_key(body),
        event_type=event_type,
        body=body,
        parsed=parsed,
        dry_run=_dry_run_requested(request),
    )


async def _forge_hook(
    request: Request,
    *,
    source: str,
    verify: Any,
    secret: str | None,
    signature_header: str | None,
    event_name: str,
    delivery_id: str | None,
    signs_form_payload: bool,
) -> JSONResponse:
    """Forgejo, Gitea and GitHub send the same kinds of events the same way: verify the raw
    body, parse the event, store it.

    A form-encoded body carries the JSON in its `payload` field. GitHub signs the body as
    sent; Forgejo and Gitea sign the JSON they put in the field (`signs_form_payload`), so
    for them the field is taken out first and verified byte for byte as they encoded it.
    """
    settings = _settings(request)
    body = await request.body()
    document = body
    if not is_form(request.headers.get("content-type")):
        _authentic(verify, secret=secret, signature_header=signature_header, body=body)
    elif signs_form_payload:
        document = form_payload(body)
        _authentic(verify, secret=secret, signature_header=signature_header, body=document)
    else:
        _authentic(verify, secret=secret, signature_header=signature_header, body=body)
        document = form_payload(body)
    try:
        parsed = parse_forge_event(
            source, event_name, parse_json_body(document), settings.star_milestone_list
        )
    except PayloadError as exc:
        raise _schema_problem(exc) from exc
    return await _accept(
        request,
        source=source,
        key=delivery_key(delivery_id, document),
        event_type=event_name,
        body=document,
        parsed=parsed,
        dry_run=_dry_run_requested(request),
    )


@router.post("/forgejo", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def forgejo_hook(request: Request) -> JSONResponse:
    """A Forgejo or Gitea webhook: releases and tag creation."""
    headers = request.headers
    return await _forge_hook(
        request,
        source=FORGEJO,
        verify=verify_forge_webhook,
        secret=_settings(request).forgejo_webhook_secret,
        signature_header=headers.get("x-forgejo-signature", headers.get("x-gitea-signature")),
        event_name=headers.get("x-forgejo-event") or headers.get("x-gitea-event") or "",
        delivery_id=headers.get("x-forgejo-delivery") or headers.get("x-gitea-delivery"),
        signs_form_payload=True,
    )


@router.post("/github", status_code=202, response_model=WebhookAnswer, responses=_ANSWERS)
async def github_hook(request: Request) -> JSONResponse:
    """A GitHub webhook: releases, tag creation, stars (and their milestones)."""
    headers = request.headers
    return await _forge_hook(
        request,
        source=GITHUB,
        verify=verify_github_webhook,
        secret=_settings(request).github_webhook_secret,
        signature_header=headers.get("x-hub-signature-256"),
        event_name=headers.get("x-github-event") or "",
        delivery_id=headers.get("x-github-delivery"),
        signs_form_payload=False,
    )
