"""The 401 answer to a request whose HTTP signature did not authenticate it."""

from __future__ import annotations

from service.web.problems import Problem

SIGNATURE_CHALLENGE = {
    "WWW-Authenticate": 'Signature realm="fedirelay",headers="(request-target) host date digest"'
}


def unauthorized_problem(detail: str, reason: str) -> Problem:
    return Problem(
        401, detail, type_="signature-rejected", reason=reason, headers=SIGNATURE_CHALLENGE
    )
