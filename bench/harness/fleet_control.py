"""Running a fleet as its own process, and driving it from another over HTTP.

``python -m bench.harness.fleet --hosts M --followers K`` starts a
:class:`~bench.harness.fleet.Fleet`
plus a small control API on 127.0.0.1, prints one JSON line once everything listens
(``{"ready": true, "control_url": ..., "port": ..., "hosts": [...], ...}``), and runs
until SIGTERM/SIGINT, ``POST /shutdown`` or ``--max-seconds``.

Control API (JSON in, JSON out)::

    GET    /state                        counts: arrivals, verified, failures, duplicates, follows
    GET    /arrivals?since=N&limit=L     arrival summaries from index N
    POST   /follow          {"relay_actor": url}
    POST   /burst           {"relay_actor": url, "count": n, "kinds": [...], "concurrency": c}
    POST   /wait_for_accepts {"timeout": s}
    POST   /wait_for        {"activity_id": id, "count": n, "timeout": s}
    POST   /faults          {"kind": "server_error", "fraction": 0.1, "duration": 5, ...}
    DELETE /faults
    POST   /shutdown

:class:`RemoteFleet` wraps these; :func:`spawn_fleet` starts the process and reads
its ready line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bench.harness.fleet import Fleet, FleetError
from bench.harness.fleet_arrivals import FleetTimeout
from bench.harness.fleet_faults import Fault, FaultKind

_FLEET_KEY = web.AppKey("fleet", Fleet)
_STOP_KEY = web.AppKey("stop", asyncio.Event)
_MAX_WAIT_SECONDS = 600.0


def fault_from_json(data: dict[str, Any]) -> Fault:
    kind = FaultKind(data["kind"])
    defaults = {
        FaultKind.SERVER_ERROR: Fault.server_error(),
        FaultKind.RATE_LIMITED: Fault.rate_limited(),
        FaultKind.GONE: Fault.gone(),
        FaultKind.SLOW_BODY: Fault.slow_body(),
        FaultKind.REFUSE: Fault.refuse(),
        FaultKind.FAIL_FIRST: Fault.fail_first(1),
    }[kind]
    retry_after = data.get("retry_after", defaults.retry_after)
    return Fault(
        kind=kind,
        status=int(data.get("status", defaults.status)),
        retry_after=None if retry_after is None else str(retry_after),
        byte_interval=float(data.get("byte_interval", defaults.byte_interval)),
        body_bytes=int(data.get("body_bytes", defaults.body_bytes)),
        first_n=int(data.get("first_n", defaults.first_n)),
        inbox_only=bool(data.get("inbox_only", defaults.inbox_only)),
    )


def fleet_state(fleet: Fleet) -> dict[str, Any]:
    arrivals = fleet.arrivals
    verified = sum(1 for arrival in arrivals if arrival.verified)
    return {
        "arrivals": len(arrivals),
        "verified": verified,
        "signature_failures": fleet.signature_failures,
        "unsupported_scheme_rejections": fleet.unsupported_scheme_rejections,
        "duplicates": sum(count - 1 for count in fleet.duplicates().values()),
        "follows_accepted": fleet.follows_accepted,
        "follows_unanswered": fleet.follows_unanswered,
        "fault_responses": dict(fleet.fault_responses),
        "key_fetches": fleet.resolver.fetches,
    }


async def _read_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as error:
        raise web.HTTPBadRequest(text=f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _timeout(data: dict[str, Any]) -> float:
    return min(float(data.get("timeout", 30.0)), _MAX_WAIT_SECONDS)


async def _state(request: web.Request) -> web.Response:
    return web.json_response(fleet_state(request.app[_FLEET_KEY]))


async def _arrivals(request: web.Request) -> web.Response:
    fleet = request.app[_FLEET_KEY]
    since = int(request.query.get("since", "0"))
    limit = int(request.query.get("limit", "10000"))
    window = fleet.arrivals[since : since + limit]
    return web.json_response(
        {"since": since, "arrivals": [arrival.summary() for arrival in window]}
    )


async def _follow(request: web.Request) -> web.Response:
    data = await _read_json(request)
    fleet = request.app[_FLEET_KEY]
    try:
        report = await fleet.follow(data["relay_actor"], concurrency=data.get("concurrency"))
    except (KeyError, FleetError) as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response({"sent": report.sent, "failed": report.failed})


async def _burst(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        report = await request.app[_FLEET_KEY].burst(
            data["relay_actor"],
            int(data["count"]),
            kinds=tuple(data.get("kinds", ("Like", "Follow"))),
            object_id=data.get("object_id"),
            concurrency=int(data.get("concurrency", 64)),
            max_seconds=min(float(data.get("max_seconds", 120.0)), _MAX_WAIT_SECONDS),
        )
    except (KeyError, ValueError, FleetError) as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response(report.summary())


async def _wait_for_accepts(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        accepted = await request.app[_FLEET_KEY].wait_for_accepts(_timeout(data))
    except (FleetTimeout, FleetError) as error:
        return web.json_response({"error": str(error)}, status=408)
    return web.json_response({"accepted": accepted})


async def _wait_for(request: web.Request) -> web.Response:
    data = await _read_json(request)
    fleet = request.app[_FLEET_KEY]
    try:
        arrivals = await fleet.wait_for(data["activity_id"], int(data["count"]), _timeout(data))
    except FleetTimeout as error:
        return web.json_response({"error": str(error)}, status=408)
    return web.json_response({"arrivals": [arrival.summary() for arrival in arrivals]})


async def _inject(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        fault = fault_from_json(data)
    except (KeyError, ValueError) as error:
        return web.json_response({"error": f"bad fault: {error}"}, status=400)
    chosen = await request.app[_FLEET_KEY].inject(
        fault,
        hosts=data.get("hosts"),
        fraction=data.get("fraction"),
        seed=int(data.get("seed", 0)),
        start_in=float(data.get("start_in", 0.0)),
        duration=data.get("duration"),
    )
    return web.json_response({"hosts": [host.base_url for host in chosen]})


async def _clear_faults(request: web.Request) -> web.Response:
    await request.app[_FLEET_KEY].clear_faults()
    return web.json_response({"cleared": True})


async def _shutdown(request: web.Request) -> web.Response:
    request.app[_STOP_KEY].set()
    return web.json_response({"stopping": True})


def control_app(fleet: Fleet, stop: asyncio.Event) -> web.Application:
    app = web.Application()
    app[_FLEET_KEY] = fleet
    app[_STOP_KEY] = stop
    app.router.add_get("/state", _state)
    app.router.add_get("/arrivals", _arrivals)
    app.router.add_post("/follow", _follow)
    app.router.add_post("/burst", _burst)
    app.router.add_post("/wait_for_accepts", _wait_for_accepts)
    app.router.add_post("/wait_for", _wait_for)
    app.router.add_post("/faults", _inject)
    app.router.add_delete("/faults", _clear_faults)
    app.router.add_post("/shutdown", _shutdown)
    return app


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Fleet(
        hosts=args.hosts,
        followers=args.followers,
        port=args.port,
        first_address=args.first_address,
        key_pool_size=args.key_pool,
        keep_activity_bodies=False,
    ) as fleet:
        runner = web.AppRunner(control_app(fleet, stop), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, args.control_address, args.control_port)
        await site.start()
        try:
            accepted = None
            if args.follow:
                await fleet.follow(args.follow)
                accepted = await fleet.wait_for_accepts(args.accept_timeout)
            ready = {
                "ready": True,
                "control_url": f"http://{args.control_address}:{site.port}",
                "port": fleet.port,
                "hosts": [host.base_url for host in fleet.hosts],
                "actors": len(fleet.followers),
                "startup_seconds": round(fleet.startup_seconds, 3),
                "accepted": accepted,
            }
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.max_seconds)
        finally:
            await runner.cleanup()


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.harness.fleet", description=__doc__)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--followers", type=int, default=1)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--first-address", default="127.0.1.1")
    parser.add_argument("--key-pool", type=int, default=8)
    parser.add_argument("--control-address", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--follow", metavar="RELAY_ACTOR_URL", default=None)
    parser.add_argument("--accept-timeout", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_arguments(argv)))


@dataclass
class SpawnedFleet:
    process: asyncio.subprocess.Process
    ready: dict[str, Any]

    @property
    def control_url(self) -> str:
        return str(self.ready["control_url"])

    async def stop(self, timeout: float = 10.0) -> int:  # noqa: ASYNC109
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


async def spawn_fleet(*arguments: str, ready_timeout: float = 60.0) -> SpawnedFleet:
    """Start ``python -m bench.harness.fleet ARGUMENTS`` and wait for its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.harness.fleet",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        limit=16 << 20,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), ready_timeout)
        ready = json.loads(line)
    except (TimeoutError, ValueError):
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise FleetError("the fleet process did not report ready") from None
    return SpawnedFleet(process, ready)


class RemoteFleet:
    """Client for a fleet process's control API."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RemoteFleet:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=_MAX_WAIT_SECONDS + 30)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._session is not None, "use RemoteFleet as an async context manager"
        async with self._session.request(method, self.control_url + path, json=body) as response:
            data = await response.json()
            if response.status == 408:
                raise FleetTimeout(data.get("error", "timed out"))
            if response.status >= 400:
                raise FleetError(data.get("error", f"control API answered {response.status}"))
            return data

    async def state(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/state"))

    async def arrivals(self, since: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        data = await self._call("GET", f"/arrivals?since={since}&limit={limit}")
        return list(data["arrivals"])

    async def follow(self, relay_actor_url: str) -> dict[str, Any]:
        return dict(await self._call("POST", "/follow", {"relay_actor": relay_actor_url}))

    async def burst(self, relay_actor_url: str, count: int, **options: Any) -> dict[str, Any]:
        body = {"relay_actor": relay_actor_url, "count": count, **options}
        return dict(await self._call("POST", "/burst", body))

    async def wait_for_accepts(self, timeout: float) -> int:  # noqa: ASYNC109
        data = await self._call("POST", "/wait_for_accepts", {"timeout": timeout})
        return int(data["accepted"])

    async def wait_for(self, activity_id: str, count: int, timeout: float) -> list[dict[str, Any]]:  # noqa: ASYNC109
        body = {"activity_id": activity_id, "count": count, "timeout": timeout}
        return list((await self._call("POST", "/wait_for", body))["arrivals"])

    async def inject(self, kind: str, **options: Any) -> list[str]:
        return list((await self._call("POST", "/faults", {"kind": kind, **options}))["hosts"])

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def shutdown(self) -> None:
        await self._call("POST", "/shutdown")
