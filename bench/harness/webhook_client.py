"""Signed CMS webhooks (Standard Webhooks) as a CMS would send them to the relay."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import aiohttp

from federation.sources.webhook_signatures import sign_standard_webhook

CMS_SECRET = "whsec_" + base64.b64encode(b"fedirelay-bench-webhook-secret-32b").decode()
CMS_SETTINGS: dict[str, Any] = {"cms_webhook_secrets": CMS_SECRET}


def cms_published(handle: str, title: str, source_id: str | None = None) -> bytes:
    event = {
        "event": "published",
        "source_id": source_id or uuid.uuid4().hex,
        "title": title,
        "url": f"https://cms.example/{uuid.uuid4().hex}",
        "content": f"<p>{title}</p>",
        "accounts": [handle],
    }
    return json.dumps(event).encode()


def signed_headers(body: bytes, message_id: str | None = None) -> dict[str, str]:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(CMS_SECRET, message_id, timestamp, body),
    }


async def send_cms_webhook(
    http: aiohttp.ClientSession, base_url: str, body: bytes
) -> tuple[int, float, dict[str, Any]]:
    """POST it; (status, time.monotonic() when the answer arrived, answer body)."""
    async with http.post(base_url + "/hooks/cms", data=body, headers=signed_headers(body)) as reply:
        answered_at = time.monotonic()
        return reply.status, answered_at, await reply.json(content_type=None)
