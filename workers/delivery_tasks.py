"""arq tasks of the delivery engine: fan-out per activity and the sweeper that loses nothing."""

from __future__ import annotations

import gc
from typing import Any

from arq.cron import cron

from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, delivery_session, inbox_connections
from service.mastodon.status_delivery import MastodonDelivery
from service.runtime.structured_logs import log_context
from service.runtime.tasks import DELIVER_ACTIVITIES
from workers.context import context_of
from workers.task_functions import TaskFunction

ENGINE = "delivery_engine"
HTTP_SESSION = "delivery_http_session"
INBOX_CONNECTIONS = "inbox_connections"
MASTODON = "mastodon_delivery"


async def STARTUP(ctx: dict[str, Any]) -> None:  # noqa: N802 (hook name fixed by workers.worker)
    worker = context_of(ctx)
    settings = worker["settings"]
    session = delivery_session(
        test_mode=settings.test_mode,
        concurrency=settings.delivery_concurrency,
        per_host=settings.delivery_per_host_concurrency,
    )
    connections = inbox_connections(
        test_mode=settings.test_mode,
        concurrency=settings.delivery_concurrency,
        per_host=settings.delivery_per_host_concurrency,
    )
    mastodon = MastodonDelivery(settings, worker["database"], media_session=session)
    resources = worker["resources"]
    resources[HTTP_SESSION] = session
    resources[INBOX_CONNECTIONS] = connections
    resources[MASTODON] = mastodon
    resources[ENGINE] = DeliveryEngine(
        settings,
        worker["database"],
        worker["queue"],
        InboxPoster(connections, test_mode=settings.test_mode),
        mastodon=mastodon,
    )
    # Everything loaded so far (modules, settings, pools) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it, and fan-out allocates
    # fast enough to trigger many. Measured in docs/delivery.md.
    gc.collect()
    gc.freeze()


async def SHUTDOWN(ctx: dict[str, Any]) -> None:  # noqa: N802
    resources = context_of(ctx).get("resources", {})
    engine = resources.pop(ENGINE, None)
    if engine is not None:
        await engine.close()
    mastodon = resources.pop(MASTODON, None)
    if mastodon is not None:
        await mastodon.close()
    connections = resources.pop(INBOX_CONNECTIONS, None)
    if connections is not None:
        await connections.close()
    session = resources.pop(HTTP_SESSION, None)
    if session is not None:
        await session.close()


def _engine(ctx: dict[str, Any]) -> DeliveryEngine:
    engine: DeliveryEngine = context_of(ctx)["resources"][ENGINE]
    return engine


async def deliver_activities(ctx: dict[str, Any], activity_row_ids: list[int]) -> int:
    """Deliver every due delivery of these activities (a pool of senders inside)."""
    ids = [int(i) for i in activity_row_ids]
    with log_context(activity_id=ids[0] if len(ids) == 1 else ids):
        return await _engine(ctx).deliver_activities(ids)


async def sweep_deliveries(ctx: dict[str, Any]) -> int:
    return await _engine(ctx).sweep()


TASKS = [TaskFunction(DELIVER_ACTIVITIES, deliver_activities)]
CRON_JOBS = [
    cron(
        sweep_deliveries,
        name="sweep_deliveries",
        second=set(range(0, 60, 3)),
        run_at_startup=True,
        timeout=60,
    )
]
