"""A steady stream of signed CMS webhooks during a drill, and what became of each.

Every webhook carries its own ``source_id``, so after the drill each accepted one (2xx) can
be followed to its post, its Create activity and that activity's arrivals at the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.harness.relay_process import RelayProcesses
from bench.harness.webhook_client import cms_published, signed_headers
from service.db.models import Activity, Post


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    source_id: str
    sent_at: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    retry_after: str | None
    content_type: str | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class WebhookStream:
    """Sends ``rate`` webhooks per second until stopped (at most ``limit``)."""

    relay: RelayProcesses
    rate: float = 10.0
    limit: int = 5000
    timeout: float = 10.0
    outcomes: list[WebhookOutcome] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> WebhookStream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        interval = 1.0 / self.rate
        pending: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            next_at = time.monotonic()
            while not self._stop.is_set() and len(self.outcomes) + len(pending) < self.limit:
                task = asyncio.create_task(self._send(http))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - time.monotonic()))
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _send(self, http: aiohttp.ClientSession) -> None:
        source_id = f"drill-{uuid.uuid4().hex}"
        body = cms_published(self.relay.handle, f"drill {source_id}", source_id)
        sent_at = time.monotonic()
        try:
            async with http.post(
                self.relay.base_url + "/hooks/cms", data=body, headers=signed_headers(body)
            ) as reply:
                await reply.read()
                outcome = WebhookOutcome(
                    source_id,
                    sent_at,
                    reply.status,
                    reply.headers.get("Retry-After"),
                    reply.headers.get("Content-Type"),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            outcome = WebhookOutcome(source_id, sent_at, 0, None, None, type(error).__name__)
        self.outcomes.append(outcome)

    # -- what happened -------------------------------------------------------------------

    @property
    def accepted(self) -> list[WebhookOutcome]:
        return [o for o in self.outcomes if o.accepted]

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(o.status or o.error) for o in self.outcomes))

    def refusals_without_retry_after(self) -> list[WebhookOutcome]:
        return [o for o in self.outcomes if o.status == 503 and not o.retry_after]

    def server_errors(self) -> list[WebhookOutcome]:
        """Answers that are neither success, a client error, nor a 503 with Retry-After."""
        return [o for o in self.outcomes if o.status >= 500 and o.status != 503]

    def unanswered(self) -> list[WebhookOutcome]:
        return [o for o in self.outcomes if o.status == 0]

    def summary(self) -> dict[str, Any]:
        return {
            "sent": len(self.outcomes),
            "accepted": len(self.accepted),
            "statuses": self.statuses(),
            "503_without_retry_after": len(self.refusals_without_retry_after()),
        }


async def create_activities_for(
    relay: RelayProcesses, source_ids: list[str]
) -> tuple[int, list[str]]:
    """(posts found, their Create activity ids) for the given webhook source ids."""
    posts = 0
    created: list[str] = []
    async with relay.database.session() as session:
        for start in range(0, len(source_ids), 500):
            chunk = source_ids[start : start + 500]
            post_ids = list(
                (await session.scalars(select(Post.id).where(Post.source_id.in_(chunk)))).all()
            )
            posts += len(post_ids)
            if not post_ids:
                continue
            rows = await session.execute(
                select(Activity.activity_uri, Activity.document).where(
                    Activity.post_id.in_(post_ids)
                )
            )
            created.extend(uri for uri, document in rows.all() if document.get("type") == "Create")
    return posts, created


async def wait_for_posts(
    relay: RelayProcesses,
    source_ids: list[str],
    timeout: float,  # noqa: ASYNC109
) -> tuple[int, list[str]]:
    """Poll (bounded) until every accepted webhook became a post with its Create."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            posts, created = await create_activities_for(relay, source_ids)
        except Exception:  # the database may still be coming back
            posts, created = 0, []
        if (posts >= len(source_ids) and len(created) >= len(source_ids)) or (
            time.monotonic() >= deadline
        ):
            return posts, created
        await asyncio.sleep(0.5)
