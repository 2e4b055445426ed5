"""Authorized fetch: when enabled, ActivityPub documents are only served to signed GETs.

With `settings.authorized_fetch` off this dependency does nothing. On, a GET asking for
ActivityPub JSON must carry a valid HTTP signature (401 otherwise) from a domain that is
not blocked (403). Browsers asking for HTML are not affected.
"""

from __future__ import annotations

from fastapi import Depends, Request

from federation.activitypub.inbox_activities import host_of_key_id
from federation.signatures.errors import SignatureError
from federation.signatures.verification import parse_signature
from service.inbox.endpoint_state import request_url, runtime_of
from service.inbox.request_authentication import AuthenticatedSigner, KeyUnavailable
from service.inbox.signature_problems import unauthorized_problem
from service.runtime.settings import Settings
from service.web.negotiation import wants_activity_json
from service.web.problems import Problem


async def require_signed_fetch(request: Request) -> AuthenticatedSigner | None:
    settings: Settings = request.app.state.settings
    if not settings.authorized_fetch or not wants_activity_json(request):
        return None
    runtime = runtime_of(request)
    headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
    ]
    try:
        pending = parse_signature(request.method, request_url(settings, request), headers, b"")
    except SignatureError as error:
        raise unauthorized_problem(error.detail, error.reason) from error
    host = host_of_key_id(pending.key_id)
    if host is None:
        raise unauthorized_problem("keyId is not a URL", "key_id_invalid")
    if await runtime.blocked_domains.blocks(host):
        raise Problem(403, f"{host} is blocked here", type_="domain-blocked")
    try:
        return await runtime.verifier.verify(pending)
    except SignatureError as error:
        raise unauthorized_problem(error.detail, error.reason) from error
    except KeyUnavailable as error:
        raise unauthorized_problem(
            f"The signing key could not be obtained ({error.error.reason})", "key_unavailable"
        ) from error


SignedFetchDep = Depends(require_signed_fetch)
