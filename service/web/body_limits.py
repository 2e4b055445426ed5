"""Cap request body sizes before any handler reads them, per kind of endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.web.problems import PROBLEM_JSON, Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INBOX_PATH = re.compile(r"^/(inbox|users/[^/]+/inbox)/?$")


class BodySizeLimit:
    """ASGI middleware: 413 with a problem body when a request body exceeds its route's cap.

    Checks Content-Length up front and counts streamed chunks too, so a chunked upload cannot
    slip past the limit.
    """

    def __init__(
        self, app: ASGIApp, *, webhook_limit: int, inbox_limit: int, default_limit: int
    ) -> None:
        self.app = app
        self.webhook_limit = webhook_limit
        self.inbox_limit = inbox_limit
        self.default_limit = default_limit

    def limit_for(self, path: str) -> int:
        if path.startswith("/hooks/") or path == "/api/preview":
            return self.webhook_limit
        if _INBOX_PATH.match(path):
            return self.inbox_limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, scope, 400, "Content-Length is not a number")
                    return
                if declared > limit:
                    await self._reject(send, scope, 413, f"Body larger than {limit} bytes")
                    return
        received = 0
        response_started = False
        rejected = False

        async def counting_receive() -> Message:
            nonlocal received, response_started, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the app the client went away, so no handler (or
                    # framework body parser) can turn the overflow into another status.
                    rejected = True
                    if not response_started:
                        response_started = True
                        await self._reject(send, scope, 413, f"Body larger than {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not rejected:
                raise

    @staticmethod
    async def _reject(send: Send, scope: Scope, status: int, detail: str) -> None:
        problem = Problem(status, detail, type_="body-too-large" if status == 413 else None)
        payload = json.dumps(problem.body(scope["path"])).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
