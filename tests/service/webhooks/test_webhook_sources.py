"""The sender registry (service/webhooks/sources.py): one declaration per sender, used by its
endpoint and by the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from bench.harness.webhook_senders import (
    cms_body,
    payload,
    send_cms,
    send_forgejo,
    send_ghost,
    send_github,
    with_webhook_secrets,
)
from service.db.engine import Database
from service.db.models import WebhookEvent
from service.runtime.settings import Settings
from service.web.routes.hooks import router
from service.webhooks.intake import KEPT_HEADERS
from service.webhooks.sources import WEBHOOK_SOURCES

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
SIGNATURE_HEADERS = {
    "webhook-signature",
    "x-ghost-signature",
    "x-forgejo-signature",
    "x-gitea-signature",
    "x-hub-signature-256",
}
# One signed delivery per sender, with the headers it records besides the content type.
DELIVERIES: dict[str, tuple[Send, set[str]]] = {
    "cms": (lambda client: send_cms(client, cms_body()), {"webhook-id", "webhook-timestamp"}),
    "ghost": (lambda client: send_ghost(client, payload("ghost_post_published.json")), set()),
    "forgejo": (
        lambda client: send_forgejo(client, "release", payload("forgejo_release_published.json")),
        {"x-forgejo-event", "x-forgejo-delivery", "x-gitea-event"},
    ),
    "github": (
        lambda client: send_github(client, "release", payload("github_release_published.json")),
        {"x-github-event", "x-github-delivery"},
    ),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


def test_every_registered_sender_has_its_endpoint_and_every_endpoint_a_sender() -> None:
    paths = {route.path for route in router.routes if isinstance(route, APIRoute)}

    assert paths == {f"/hooks/{name}" for name in WEBHOOK_SOURCES}


def test_no_sender_records_a_signature_header() -> None:
    assert not SIGNATURE_HEADERS & set(KEPT_HEADERS)


@pytest.mark.parametrize("sender", sorted(DELIVERIES))
async def test_a_stored_delivery_keeps_its_senders_headers_without_the_signature(
    client: httpx.AsyncClient, database: Database, sender: str
) -> None:
    send, recorded = DELIVERIES[sender]

    response = await send(client)

    assert response.status_code == 202, response.text
    async with database.session() as session:
        [row] = (await session.execute(select(WebhookEvent))).scalars().all()
    assert row.source == sender
    assert set(row.headers) == {"content-type", "user-agent", *recorded}
