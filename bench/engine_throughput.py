"""A quick, rough throughput figure for the delivery engine alone (no arq, no API).

One process: a fleet of fake servers (verifying every signature) and the engine share the
event loop and the CPU, so the figure is a lower bound of what a worker core does.

    python -m bench.engine_throughput --hosts 1000 --activities 5
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.harness.delivery_scenarios import (
    create_account,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
)
from bench.harness.fleet import Fleet
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.migrate import upgrade
from service.delivery.engine import DeliveryEngine
from service.delivery.signed_posts import InboxPoster, inbox_connections
from service.runtime.settings import Settings


async def run(hosts: int, followers: int, activities: int, database_url: str) -> None:
    settings = Settings(base_url="http://relay.test", test_mode=True, database_url=database_url)
    database = Database(database_url)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database, "bench")
    connections = inbox_connections(
        test_mode=True,
        concurrency=settings.delivery_concurrency,
        per_host=settings.delivery_per_host_concurrency,
    )
    engine = DeliveryEngine(settings, database, None, InboxPoster(connections, test_mode=True))
    async with Fleet(hosts=hosts, followers=followers, keep_activity_bodies=False) as fleet:
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)

        # One activity to every follower: time from publication to the last arrival.
        document = note_activity(urls, account)
        started = time.perf_counter()
        published = await publish(database, account, document)
        await engine.deliver_activity(published.activity_row_id)
        await fleet.wait_for(document["id"], count=hosts, timeout=60)
        single = time.perf_counter() - started
        print(
            f"1 activity, {hosts * followers} followers on {hosts} hosts: "
            f"{published.delivery_count} deliveries, last verified arrival after {single:.2f} s"
        )

        documents = [note_activity(urls, account) for _ in range(activities)]
        ids = [(await publish(database, account, d)).activity_row_id for d in documents]
        started = time.perf_counter()
        await asyncio.gather(*(engine.deliver_activity(i) for i in ids))
        for document in documents:
            await fleet.wait_for(document["id"], count=hosts, timeout=120)
        elapsed = time.perf_counter() - started
        total = activities * hosts
        print(
            f"{activities} activities x {hosts} inboxes: {total} signed deliveries in "
            f"{elapsed:.2f} s = {total / elapsed:.0f}/s (signature failures: "
            f"{fleet.signature_failures}, duplicates: {len(fleet.duplicates())})"
        )
    await engine.close()
    await connections.close()
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--activities", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = arguments.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        asyncio.run(run(arguments.hosts, arguments.followers, arguments.activities, url))


if __name__ == "__main__":
    main()
