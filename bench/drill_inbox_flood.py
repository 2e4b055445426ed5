"""Inbox flood: 5,000 badly signed POSTs from one address while a real Follow arrives.

The flood comes from one loopback address (127.0.99.1), 32 requests at a time, with
well-formed draft-cavage headers that claim a real fleet actor's key but are signed with
another key, so each one that gets past the rate limit costs the relay a key lookup and an
RSA verification. Meanwhile fleet actors (from 127.0.0.1) send genuine Follows. The relay
runs its default per-address inbox limit (200/s sustained, bursts of 1,000).

The genuine Follows come from four fleet actors on two hosts: the impersonated actor, another
actor on its host, and two actors on another host (the relay knows none of their keys yet).

Pass: every Follow's Accept reaches the fleet within 5 s of the Follows being sent; the flood is
refused (401 or 429, never a 5xx) and rate-limited (429s seen); the API's memory stays
bounded (less than 50 MB above its resident size before the flood).

    python -m bench.drill_inbox_flood --requests 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from bench.bench_fanout import fleet_process
from bench.drill_report import DrillReport
from bench.harness.cavage_reference import sign_request
from bench.harness.fleet_observer import arrivals_since
from bench.harness.relay_process import RelayProcesses
from service.db.models import Follower

FLOOD_ADDRESS = "127.0.99.1"
FOLLOW_DEADLINE_SECONDS = 5.0
MEMORY_GROWTH_LIMIT_MB = 50.0
# The relay's defaults; RelayProcesses turns the limit off for benchmarks unless told.
FLOOD_SETTINGS: dict[str, Any] = {
    "inbox_rate_limit_per_second": 200.0,
    "inbox_rate_limit_burst": 1000,
}


def forged_requests(
    inbox: str, claimed_actor: str, variants: int
) -> list[tuple[bytes, dict[str, str]]]:
    """Requests whose signature claims ``claimed_actor``'s key but was made with another."""
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    prepared = []
    for _ in range(variants):
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{claimed_actor}/activities/{uuid.uuid4().hex}",
            "type": "Like",
            "actor": claimed_actor,
            "object": inbox,
        }
        body = json.dumps(activity).encode()
        headers = sign_request(
            method="POST",
            url=inbox,
            private_key=impostor,
            key_id=f"{claimed_actor}#main-key",
            body=body,
        )
        headers["Content-Type"] = "application/activity+json"
        prepared.append((body, headers))
    return prepared


async def _flood(
    inbox: str,
    requests: list[tuple[bytes, dict[str, str]]],
    total: int,
    concurrency: int,
    statuses: Counter[str],
) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency, local_addr=(FLOOD_ADDRESS, 0))
    timeout = aiohttp.ClientTimeout(total=10)
    numbers = iter(range(total))
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def sender() -> None:
            for number in numbers:
                body, headers = requests[number % len(requests)]
                try:
                    async with http.post(inbox, data=body, headers=headers) as response:
                        await response.read()
                        statuses[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    statuses[type(error).__name__] += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.monotonic() - started


async def inbox_flood(requests: int = 5000, concurrency: int = 32) -> dict[str, Any]:
    report = DrillReport(
        f"inbox flood: {requests} bad signatures from one address",
        f"python -m bench.drill_inbox_flood --requests {requests}",
    )
    try:
        async with (
            fleet_process(2, 2) as fleet,
            RelayProcesses(settings=FLOOD_SETTINGS) as relay,
        ):
            inbox = relay.urls.shared_inbox
            hosts = list(fleet.hosts)
            claimed = f"{hosts[0]}/users/follower1"
            forged = await asyncio.to_thread(forged_requests, inbox, claimed, 50)
            assert relay.api is not None
            rss_before = relay.api.rss_bytes()
            peak = rss_before
            fetches_before = int((await fleet.remote.state())["key_fetches"])
            arrivals_before = int((await fleet.remote.state())["arrivals"])
            statuses: Counter[str] = Counter()
            flood = asyncio.create_task(_flood(inbox, forged, requests, concurrency, statuses))
            await asyncio.sleep(1.0)  # the flood is under way and the burst allowance spent
            follow_sent = time.monotonic()
            sent = await fleet.remote.follow(relay.actor_url)
            accepted = 0
            wait_error = None
            try:
                accepted = await fleet.remote.wait_for_accepts(FOLLOW_DEADLINE_SECONDS * 4)
            except Exception as exc:
                wait_error = f"{type(exc).__name__}: {exc}"
            while not flood.done():
                peak = max(peak, relay.api.rss_bytes())
                await asyncio.sleep(0.2)
            flood_seconds = await flood
            rss_after = relay.api.rss_bytes()
            async with relay.database.session() as session:
                followers = list(await session.scalars(select(Follower.actor_uri)))
            state = await fleet.remote.state()
            arrivals = await arrivals_since(fleet.remote, arrivals_before)
            accept_times = [
                float(a["arrived_at"]) for a in arrivals if a["activity_type"] == "Accept"
            ]
        follow_seconds = None if not accept_times else max(accept_times) - follow_sent
        growth_mb = (max(peak, rss_after) - rss_before) / 2**20
        report.figures.update(
            flood_requests=requests,
            flood_seconds=round(flood_seconds, 2),
            flood_statuses=dict(statuses),
            follows_sent=sent.get("sent"),
            follows_refused=list(sent.get("failed", {}).values()),
            followers_accepted=sorted(followers),
            impersonated_actor=claimed,
            follows_accepted=accepted,
            follow_to_accept_seconds=None if follow_seconds is None else round(follow_seconds, 2),
            api_rss_before_mb=round(rss_before / 2**20, 1),
            api_rss_peak_mb=round(max(peak, rss_after) / 2**20, 1),
            key_fetches_during_flood=int(state["key_fetches"]) - fetches_before,
            wait_error=wait_error,
        )
        server_errors = sum(n for s, n in statuses.items() if s.startswith("5") or not s.isdigit())
        genuine = {f"{host}/users/follower{n}" for host in hosts for n in range(2)}
        refused = sorted(genuine - set(followers))
        report.figures["genuine_follows_refused"] = refused
        report.check(
            "every genuine Follow was accepted within 5 s",
            not refused
            and follow_seconds is not None
            and follow_seconds <= FOLLOW_DEADLINE_SECONDS,
            f"last Accept {report.figures['follow_to_accept_seconds']} s after the Follows; "
            f"refused: {refused or 'none'}",
        )
        report.check(
            "the flood was refused, never a 5xx or a dropped connection",
            server_errors == 0 and not any(s.startswith("2") for s in statuses),
            f"{dict(statuses)}",
        )
        report.check("the flood was rate-limited", statuses.get("429", 0) > 0, f"{dict(statuses)}")
        report.check(
            "the API's memory stayed bounded",
            growth_mb < MEMORY_GROWTH_LIMIT_MB,
            f"+{growth_mb:.1f} MB",
        )
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_inbox_flood")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(inbox_flood(args.requests, args.concurrency)), indent=2))


if __name__ == "__main__":
    main()
