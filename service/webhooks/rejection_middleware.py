"""ASGI middleware that tells the rejection counter about every refused webhook request.

It sits outside the body-size limit, so a 413 is seen like any other refusal, and looks only
at the answer's status: whichever layer refused the request (signature check, JSON parsing,
schema, size limit, routing, an unavailable database), the count is the same.
"""

from __future__ import annotations

from collections.abc import Callable

from service.web.body_limits import ASGIApp, Message, Receive, Scope, Send
from service.webhooks.rejections import (
    SERVER_ERROR,
    RejectionCounter,
    rejection_reason,
    source_of,
)

HOOKS_PREFIX = "/hooks/"


class WebhookRejectionTracking:
    """`counter` is looked up per request (it is created in the app's lifespan)."""

    def __init__(self, app: ASGIApp, *, counter: Callable[[], RejectionCounter | None]) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(HOOKS_PREFIX):
            await self.app(scope, receive, send)
            return
        answered = False

        async def watching_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                if message["status"] >= 400:
                    self._record(scope, rejection_reason(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            # An unhandled error becomes a 500 further out; the webhook was not stored.
            if not answered:
                self._record(scope, SERVER_ERROR)
            raise

    def _record(self, scope: Scope, reason: str) -> None:
        counter = self.counter()
        if counter is not None:
            counter.record(source_of(scope["path"]), reason)
