"""The webhook senders the relay accepts, each declared once: how its deliveries are
authenticated, what they say, and how a redelivery is recognised.

The endpoint (service/web/routes/hooks.py) authenticates, interprets and keys a request with
its sender's declaration; the worker (service/publishing/webhook_events.py) interprets the
stored delivery with the same declaration, so both read a body the same way. A sender's
payload parsing proper is pure and lives in federation/sources; its signature checks in
federation/sources/webhook_signatures.py.

* The CMS signs with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`); its body is the relay's own schema (service/webhooks/schemas.py).
* Ghost signs body and timestamp (`X-Ghost-Signature`) and names no delivery id: a
  redelivery is recognised by its body.
* Forgejo/Gitea and GitHub sign the body with HMAC-SHA256 and name the event and the delivery
  in headers. A form-encoded body carries the JSON in its `payload` field, and the JSON is
  what is stored; GitHub signs the body as sent, Forgejo and Gitea the JSON they put in the
  field, so for them the field is taken out first and verified byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from federation.sources.events import IgnoredEvent, ParsedWebhook
from federation.sources.forge_events import FORGEJO, GITHUB, parse_forge_event
from federation.sources.ghost_events import GHOST, parse_ghost_event
from federation.sources.webhook_signatures import (
    verify_forge_webhook,
    verify_ghost_webhook,
    verify_github_webhook,
    verify_standard_webhook,
)
from service.runtime.settings import Settings
from service.webhooks.forms import form_payload, is_form
from service.webhooks.schemas import CMS_EVENTS, CmsEvent, cms_source_event

CMS: Final = "cms"
# A delivery id longer than this (the column holds 255) is keyed by its digest instead.
_MAX_DELIVERY_KEY = 200

# Request headers, looked up case-insensitively (Starlette's `Headers` is one).
Headers = Mapping[str, str]


class MalformedJson(ValueError):
    """The delivery's document is not JSON."""


@dataclass(frozen=True, slots=True)
class InterpretedDelivery:
    """What a delivery says."""

    # Recorded with the stored delivery, and given back when the worker interprets it.
    event_type: str
    events: ParsedWebhook
    # The body itself asked for a preview instead of publishing (the CMS's `dry_run`).
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class WebhookSource:
    # Stored with each delivery (unique with its delivery key); also the endpoint's path.
    name: str
    # Raises WebhookSignatureError unless the request is authentic (or a 400 Problem for a
    # form without its payload); returns the JSON document to interpret and store.
    authenticate: Callable[[Headers, bytes, Settings, float], bytes]
    # The event type the sender names in a header ("" when the body says it).
    event_name: Callable[[Headers], str]
    # (event name or stored event type, document) → events. Raises MalformedJson,
    # PayloadError or pydantic's ValidationError when the document breaks the schema.
    interpret: Callable[[str, bytes, Settings], InterpretedDelivery]
    # The same for every redelivery of one delivery.
    delivery_key: Callable[[Headers, bytes], str]
    # Headers kept with the stored delivery for operators (never a signature).
    recorded_headers: tuple[str, ...]


def json_document(document: bytes) -> Any:
    try:
        return json.loads(document)
    except (ValueError, RecursionError) as exc:
        raise MalformedJson(str(exc)) from exc


def body_digest_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def delivery_key(presented: str | None, body: bytes) -> str:
    """The delivery's id as the sender gave it, or a digest of the body when it gave none."""
    value = (presented or "").strip()
    if not value or len(value) > _MAX_DELIVERY_KEY:
        return body_digest_key(body if not value else value.encode())
    return value


def _no_event_header(headers: Headers) -> str:
    return ""


def _delivery_id_key(header: str) -> Callable[[Headers, bytes], str]:
    def key(headers: Headers, document: bytes) -> str:
        return delivery_key(headers.get(header), document)

    return key


# The CMS (Standard Webhooks)


def _authenticate_cms(headers: Headers, body: bytes, settings: Settings, now: float) -> bytes:
    verify_standard_webhook(
        secrets=settings.cms_secret_list,
        message_id=headers.get("webhook-id"),
        timestamp=headers.get("webhook-timestamp"),
        signature_header=headers.get("webhook-signature"),
        body=body,
        now=now,
    )
    return body


def _interpret_cms(event_name: str, document: bytes, settings: Settings) -> InterpretedDelivery:
    payload = json_document(document)
    if isinstance(payload, Mapping):
        event = payload.get("event")
        if isinstance(event, str) and event not in CMS_EVENTS:
            # Senders subscribe to more events than a relay publishes: answered, not refused.
            reason = f"event type '{event[:64]}' is not one of {', '.join(CMS_EVENTS)}"
            return InterpretedDelivery("ignored", IgnoredEvent(reason))
    cms_event = CmsEvent.model_validate(payload)
    return InterpretedDelivery(
        cms_event.event, [cms_source_event(cms_event)], dry_run=cms_event.dry_run
    )


# Ghost


def _authenticate_ghost(headers: Headers, body: bytes, settings: Settings, now: float) -> bytes:
    verify_ghost_webhook(
        secret=settings.ghost_webhook_secret,
        signature_header=headers.get("x-ghost-signature"),
        body=body,
        now=now,
    )
    return body


def _interpret_ghost(event_name: str, document: bytes, settings: Settings) -> InterpretedDelivery:
    parsed = parse_ghost_event(json_document(document))
    event_type = f"post.{parsed[0].action}" if isinstance(parsed, list) else "ignored"
    return InterpretedDelivery(event_type, parsed)


def _ghost_delivery_key(headers: Headers, document: bytes) -> str:
    return body_digest_key(document)


# Forgejo/Gitea and GitHub


def _forge_document(
    headers: Headers, body: bytes, verify: Callable[[bytes], None], *, signs_form_payload: bool
) -> bytes:
    if not is_form(headers.get("content-type")):
        verify(body)
        return body
    if signs_form_payload:
        document = form_payload(body)
        verify(document)
        return document
    verify(body)
    return form_payload(body)


def _authenticate_forgejo(headers: Headers, body: bytes, settings: Settings, now: float) -> bytes:
    def verify(signed: bytes) -> None:
        verify_forge_webhook(
            secret=settings.forgejo_webhook_secret,
            signature_header=headers.get("x-forgejo-signature", headers.get("x-gitea-signature")),
            body=signed,
        )

    return _forge_document(headers, body, verify, signs_form_payload=True)


def _authenticate_github(headers: Headers, body: bytes, settings: Settings, now: float) -> bytes:
    def verify(signed: bytes) -> None:
        verify_github_webhook(
            secret=settings.github_webhook_secret,
            signature_header=headers.get("x-hub-signature-256"),
            body=signed,
        )

    return _forge_document(headers, body, verify, signs_form_payload=False)


def _forge_interpreter(source: str) -> Callable[[str, bytes, Settings], InterpretedDelivery]:
    def interpret(event_name: str, document: bytes, settings: Settings) -> InterpretedDelivery:
        payload = json_document(document)
        parsed = parse_forge_event(source, event_name, payload, settings.star_milestone_list)
        return InterpretedDelivery(event_name, parsed)

    return interpret


def _forgejo_event_name(headers: Headers) -> str:
    return headers.get("x-forgejo-event") or headers.get("x-gitea-event") or ""


def _forgejo_delivery_key(headers: Headers, document: bytes) -> str:
    presented = headers.get("x-forgejo-delivery") or headers.get("x-gitea-delivery")
    return delivery_key(presented, document)


def _github_event_name(headers: Headers) -> str:
    return headers.get("x-github-event") or ""


CMS_SOURCE: Final = WebhookSource(
    name=CMS,
    authenticate=_authenticate_cms,
    event_name=_no_event_header,
    interpret=_interpret_cms,
    delivery_key=_delivery_id_key("webhook-id"),
    recorded_headers=("webhook-id", "webhook-timestamp"),
)
GHOST_SOURCE: Final = WebhookSource(
    name=GHOST,
    authenticate=_authenticate_ghost,
    event_name=_no_event_header,
    interpret=_interpret_ghost,
    delivery_key=_ghost_delivery_key,
    recorded_headers=(),
)
FORGEJO_SOURCE: Final = WebhookSource(
    name=FORGEJO,
    authenticate=_authenticate_forgejo,
    event_name=_forgejo_event_name,
    interpret=_forge_interpreter(FORGEJO),
    delivery_key=_forgejo_delivery_key,
    recorded_headers=("x-forgejo-event", "x-forgejo-delivery", "x-gitea-event", "x-gitea-delivery"),
)
GITHUB_SOURCE: Final = WebhookSource(
    name=GITHUB,
    authenticate=_authenticate_github,
    event_name=_github_event_name,
    interpret=_forge_interpreter(GITHUB),
    delivery_key=_delivery_id_key("x-github-delivery"),
    recorded_headers=("x-github-event", "x-github-delivery", "x-github-hook-id"),
)

WEBHOOK_SOURCES: Final[Mapping[str, WebhookSource]] = {
    source.name: source for source in (CMS_SOURCE, GHOST_SOURCE, FORGEJO_SOURCE, GITHUB_SOURCE)
}


def interpret_stored(
    source: str, event_type: str, document: bytes, settings: Settings
) -> ParsedWebhook:
    """A stored delivery's events, read as its endpoint read them when it arrived."""
    sender = WEBHOOK_SOURCES.get(source)
    if sender is None:
        return IgnoredEvent(f"unknown source {source}")
    return sender.interpret(event_type, document, settings).events
