"""Worker cron job polling the configured forge repositories for stars and missed releases."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from arq.cron import cron

from service.polling.forge_api import ForgeClient, ForgeError
from service.polling.forge_repositories import PollReport, poll_repository
from workers.context import context_of

log = logging.getLogger(__name__)
HTTP_RESOURCE = "forge_http"


async def STARTUP(ctx: dict[str, Any]) -> None:  # noqa: N802 (the worker's hook name)
    context_of(ctx)["resources"][HTTP_RESOURCE] = httpx.AsyncClient(
        timeout=httpx.Timeout(15.0), follow_redirects=False
    )


async def SHUTDOWN(ctx: dict[str, Any]) -> None:  # noqa: N802
    client: httpx.AsyncClient | None = context_of(ctx).get("resources", {}).pop(HTTP_RESOURCE, None)
    if client is not None:
        await client.aclose()


async def poll_forge_repositories(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    worker = context_of(ctx)
    settings = worker["settings"]
    if not settings.forge_base_url or not settings.forge_repository_list:
        return []
    forge = ForgeClient(
        worker["resources"][HTTP_RESOURCE], settings.forge_base_url, settings.forge_token
    )
    reports: list[dict[str, Any]] = []
    for repository in settings.forge_repository_list:
        try:
            report: PollReport = await poll_repository(
                worker["database"],
                worker["queue"],
                worker["urls"],
                forge,
                repository,
                settings.star_milestone_list,
            )
        except ForgeError as exc:
            log.warning("polling %s failed: %s", repository, exc)
            continue
        reports.append({"repository": report.repository, "events": report.events})
    return reports


CRON_JOBS = [cron(poll_forge_repositories, second={0}, run_at_startup=True, unique=True)]
