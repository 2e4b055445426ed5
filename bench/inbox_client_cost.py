"""CPU per inbox POST of the client alone: the lean inbox client against an aiohttp session.

A plain aiohttp server in a child process answers 202, so only the client's work is counted
in this process (user and system CPU, signing excluded: the headers are signed once).

    python -m bench.inbox_client_cost --posts 20000 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from typing import Any

import uvloop
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from service.delivery.signed_posts import (
    InboxPoster,
    PreparedActivity,
    delivery_session,
    inbox_connections,
)

_SERVER = """
import sys
import uvloop
from aiohttp import web

async def inbox(request):
    await request.read()
    return web.Response(status=202)

app = web.Application()
app.router.add_post("/inbox", inbox)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def _measure(client: str, port: int, posts: int, concurrency: int) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = {"id": "https://relay.test/a/1", "type": "Create", "content": "x" * 1200}
    activity = PreparedActivity.build(1, document, "https://relay.test/actor#main-key", key)
    inbox = f"http://127.0.0.1:{port}/inbox"
    connections = inbox_connections(test_mode=True, concurrency=256, per_host=concurrency)
    poster = InboxPoster(connections, test_mode=True)
    session = delivery_session(test_mode=True, concurrency=256, per_host=concurrency)
    headers = poster.signed_headers(inbox, activity)

    async def via_aiohttp() -> int:
        # The request path inbox POSTs took before the lean client.
        async with session.post(
            URL(inbox, encoded=True), data=activity.body, headers=headers, allow_redirects=False
        ) as response:
            return response.status

    async def via_lean() -> int:
        return (await poster.post(inbox, activity, headers)).status or 0

    post = via_aiohttp if client == "aiohttp" else via_lean
    remaining = 0

    async def sender() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            assert await post() == 202

    try:
        for count in (concurrency * 20, posts):  # warm-up (connections, caches), then measured
            remaining = count
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await connections.close()
        await session.close()
    user = (after.ru_utime - before.ru_utime) / posts * 1e6
    system = (after.ru_stime - before.ru_stime) / posts * 1e6
    return {
        "client": client,
        "posts": posts,
        "cpu_us_per_post": round(user + system, 1),
        "user_us": round(user, 1),
        "system_us": round(system, 1),
        "posts_per_second": round(posts / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_client_cost")
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)])  # noqa: S603
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        results = [
            uvloop.run(_measure(client, port, args.posts, args.concurrency))
            for _ in range(args.rounds)
            for client in ("aiohttp", "lean")
        ]
    finally:
        server.terminate()
        server.wait()
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
