"""Memory across a long fan-out: worker and API resident set size, sampled every second.

Posts go out in rounds to every fleet host until ``deliveries`` were made; the API serves
the key fetches meanwhile. Growth is measured from the end of the first round (caches and
pools warm) to the end; both processes must stay under 150 MB and within 10 %.

    python -m bench.bench_memory --deliveries 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bench.bench_fanout import fleet_process, timed_fanout
from bench.harness.relay_process import RelayProcesses
from bench.relay_load import insert_followers

LIMIT_MB = 150.0
GROWTH_LIMIT = 0.10


async def memory(
    deliveries: int = 100_000, hosts: int = 500, posts_per_round: int = 20
) -> dict[str, Any]:
    rounds = max(2, deliveries // (hosts * posts_per_round))
    samples: list[dict[str, float]] = []
    async with fleet_process(hosts, 1) as fleet, RelayProcesses() as relay:
        await insert_followers(relay, fleet.hosts, 1)

        async def sample() -> None:
            while True:
                rss = relay.rss_bytes()
                samples.append({name: value / 2**20 for name, value in rss.items()})
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        try:
            await timed_fanout(relay, fleet, posts_per_round, 300)
            warm = {name: value / 2**20 for name, value in relay.rss_bytes().items()}
            delivered = 0
            for _ in range(rounds - 1):
                result = await timed_fanout(relay, fleet, posts_per_round, 300)
                delivered += result["delivered"]
            final = {name: value / 2**20 for name, value in relay.rss_bytes().items()}
        finally:
            sampler.cancel()
    peak = {name: max(s.get(name, 0.0) for s in samples) for name in final}
    growth = {name: (final[name] - warm[name]) / warm[name] for name in final if warm.get(name)}
    return {
        "deliveries": delivered + hosts * posts_per_round,
        "warm_mb": {k: round(v, 1) for k, v in warm.items()},
        "final_mb": {k: round(v, 1) for k, v in final.items()},
        "peak_mb": {k: round(v, 1) for k, v in peak.items()},
        "growth": {k: round(v, 3) for k, v in growth.items()},
        "worker_growth": round(growth.get("worker-1", 0.0), 3),
        "met": all(v < LIMIT_MB for v in peak.values())
        and all(g <= GROWTH_LIMIT for g in growth.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_memory")
    parser.add_argument("--deliveries", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(memory(args.deliveries)), indent=2))


if __name__ == "__main__":
    main()
