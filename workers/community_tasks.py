"""Worker crons for the community features.

* `poll_feeds` (every minute): poll the RSS/Atom subscriptions that are due.
* `refresh_mastodon_counts` (every 15 minutes): read favourites/boosts/replies of recent
  posts back from linked Mastodon accounts for the analytics.
"""

from __future__ import annotations

from typing import Any

from arq.cron import cron

from service.mastodon.counts import MastodonCountsRefresher
from service.polling.feeds import FeedPoller
from workers.context import context_of

_POLLER = "feed_poller"
_COUNTS = "mastodon_counts"


async def STARTUP(ctx: dict[str, Any]) -> None:  # noqa: N802 - name fixed by workers.worker
    worker = context_of(ctx)
    worker["resources"][_POLLER] = FeedPoller(
        worker["settings"], worker["database"], worker["urls"], worker["queue"]
    )
    worker["resources"][_COUNTS] = MastodonCountsRefresher(worker["settings"], worker["database"])


async def SHUTDOWN(ctx: dict[str, Any]) -> None:  # noqa: N802 - name fixed by workers.worker
    resources = context_of(ctx)["resources"]
    poller: FeedPoller | None = resources.pop(_POLLER, None)
    if poller is not None:
        await poller.aclose()
    counts: MastodonCountsRefresher | None = resources.pop(_COUNTS, None)
    if counts is not None:
        await counts.aclose()


async def poll_feeds(ctx: dict[str, Any]) -> int:
    poller: FeedPoller = context_of(ctx)["resources"][_POLLER]
    return len(await poller.poll_due())


async def refresh_mastodon_counts(ctx: dict[str, Any]) -> int:
    refresher: MastodonCountsRefresher = context_of(ctx)["resources"][_COUNTS]
    return await refresher.refresh()


CRON_JOBS = [
    cron(poll_feeds, second={41}, run_at_startup=True),
    cron(refresh_mastodon_counts, minute={7, 22, 37, 52}, second={0}),
]
