"""Which clients get ActivityPub JSON and which get a web page."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from service.web.negotiation import wants_activity_json


def request_with(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    "accept",
    [
        "application/activity+json",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "application/activity+json, application/ld+json",
        "text/html;q=0.5, application/activity+json",
    ],
)
def test_fediverse_accept_headers_get_json(accept):
    assert wants_activity_json(request_with(accept))


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "text/html, application/activity+json;q=0.5",
        "application/activity+json;q=0",
        "application/activity+json;q=bogus",
    ],
)
def test_browsers_and_vague_clients_get_html(accept):
    assert not wants_activity_json(request_with(accept))
