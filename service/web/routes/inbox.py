"""Inboxes: `POST /users/{handle}/inbox` and the shared `POST /inbox`.

The handler only authenticates and persists; everything else happens in the worker. In
order, each step answering before any more expensive one runs:

1. rate limit per client address (429)
2. the account of a personal inbox must exist (404)
3. the signature is parsed and checked without a key: digests against the raw body,
   covered fields, Date/created window (401)
4. the keyId's domain must not be blocked (403), before any key is fetched
5. the key (memory, database, then network) verifies the signature, re-fetched once
   when it fails, in case it was rotated (401)
6. the body is JSON (400), an activity whose `actor` owns the key (401) and whose ids
   are on the actor's origin (403)
7. the activity is stored, once per activity id (a repeat answers 202 and changes
   nothing), and its processing enqueued; if Redis is away the sweeper enqueues it later.
   Concurrent requests are committed together (`InboxWriter`), one statement per batch

Every signature failure is a 401, including a body whose digest does not match: the
request is not authenticated, whichever part of it was altered.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from federation.activitypub.inbox_activities import (
    InboxRejection,
    check_envelope,
    host_of_key_id,
    reference_id,
    type_of,
)
from federation.signatures.errors import SignatureError
from federation.signatures.header_fields import collect_raw_header_fields
from federation.signatures.verification import parse_signature_fields
from service.inbox.endpoint_state import federation_lifespan, request_url, runtime_of
from service.inbox.request_authentication import KeyUnavailable
from service.inbox.signature_problems import SIGNATURE_CHALLENGE, unauthorized_problem
from service.inbox.store import InboxUnavailable
from service.runtime.settings import Settings
from service.web.problems import Problem

router = APIRouter(tags=["federation"], lifespan=federation_lifespan)


# Plain Starlette endpoints: the inbox takes no parameters FastAPI could validate, and
# skipping its dependency resolution and response wrapping is a measurable share of the
# cost of an intake request. Problems still go through the app's exception handlers.
async def shared_inbox(request: Request) -> Response:
    """Shared inbox."""
    return await _receive(request, account_id=None)


async def account_inbox(request: Request) -> Response:
    """Account inbox."""
    runtime = runtime_of(request)
    _check_rate(request)
    handle: str = request.path_params["handle"]
    account_id = await runtime.account_ids.get(handle)
    if account_id is None:
        raise Problem(404, f"No account '{handle}' here", type_="unknown-account")
    return await _receive(request, account_id=account_id, rate_checked=True)


router.add_route("/inbox", shared_inbox, methods=["POST"], name="shared_inbox")
router.add_route("/users/{handle}/inbox", account_inbox, methods=["POST"], name="account_inbox")


def _check_rate(request: Request) -> None:
    limiter = runtime_of(request).client_limiter
    if limiter is None:
        return
    client = request.client.host if request.client else "unknown"
    if not limiter.try_acquire(client):
        raise Problem(
            429,
            "Too many inbox requests from this address",
            type_="rate-limited",
            headers={"Retry-After": "1"},
        )


async def _receive(
    request: Request, *, account_id: int | None, rate_checked: bool = False
) -> Response:
    if not rate_checked:
        _check_rate(request)
    runtime = runtime_of(request)
    settings: Settings = request.app.state.settings
    body = await request.body()
    fields = collect_raw_header_fields(request.scope["headers"])
    try:
        pending = parse_signature_fields("POST", request_url(settings, request), fields, body)
    except SignatureError as error:
        raise unauthorized_problem(error.detail, error.reason) from error
    host = host_of_key_id(pending.key_id)
    if host is None:
        raise unauthorized_problem("keyId is not a URL", "key_id_invalid")
    if await runtime.blocked_domains.blocks(host):
        raise Problem(403, f"{host} is blocked here", type_="domain-blocked")
    try:
        signer = await runtime.verifier.verify(pending)
    except SignatureError as error:
        raise unauthorized_problem(error.detail, error.reason) from error
    except KeyUnavailable as error:
        if error.gone and _is_self_delete(body, pending.key_id):
            # An account deleted before we ever knew its key: nothing to erase.
            return Response(status_code=202)
        raise unauthorized_problem(
            f"The signing key could not be obtained ({error.error.reason})", "key_unavailable"
        ) from error
    document = _parse_json(body)
    try:
        envelope = check_envelope(document, signer.owner)
    except InboxRejection as rejection:
        headers_out = SIGNATURE_CHALLENGE if rejection.status == 401 else None
        raise Problem(
            rejection.status, rejection.detail, type_=rejection.reason, headers=headers_out
        ) from rejection
    try:
        await runtime.inbox_writer.store(
            envelope, document, key_id=signer.key_id, account_id=account_id
        )
    except InboxUnavailable as error:
        raise Problem(
            503,
            "The activity could not be stored; retry later",
            type_="inbox-unavailable",
            headers={"Retry-After": "30"},
        ) from error
    return Response(status_code=202)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise Problem(400, "Body is not valid JSON", type_="malformed-json") from error
    if not isinstance(document, dict):
        raise Problem(400, "Body is not a JSON object", type_="not-an-activity")
    return document


def _is_self_delete(body: bytes, key_id: str) -> bool:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if type_of(document) != "Delete":
        return False
    actor = reference_id(document.get("actor"))
    return (
        actor is not None
        and reference_id(document.get("object")) == actor
        and (key_id.split("#", 1)[0] == actor)
    )
