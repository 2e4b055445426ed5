"""`fedirelay queue`: the delivery queue from the command line (status, dead letters,
retry, discard). Every command takes `--json` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from service.cli.runtime import run_with_database, wake_workers
from service.db.engine import Database
from service.delivery.hosts import set_host_paused
from service.delivery.operator_actions import (
    Selection,
    discard_deliveries,
    list_dead_letters,
    queue_status,
    retry_deliveries,
)

queue_app = typer.Typer(help="Inspect and repair the delivery queue.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
HostOpt = Annotated[str | None, typer.Option("--host", help="a destination host")]
AllOpt = Annotated[bool, typer.Option("--all", help="every dead letter")]
Ids = Annotated[list[int] | None, typer.Argument(help="delivery ids")]


def _echo(value: Any, as_json: bool, text: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(value, indent=2, default=str))
    else:
        text()


def _selection(ids: list[int] | None, host: str | None, all_dead: bool) -> Selection:
    given = sum((bool(ids), host is not None, all_dead))
    if given != 1:
        typer.echo("error: give delivery ids, --host or --all (exactly one)", err=True)
        raise typer.Exit(2)
    return Selection(delivery_ids=ids or (), host=host, all_dead=all_dead)


@queue_app.command("status")
def status(json_output: JsonOpt = False) -> None:
    """Deliveries by state, how many are due, and troubled hosts."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            return await queue_status(session)

    result = run_with_database(work)

    def text() -> None:
        for state, count in result["states"].items():
            typer.echo(f"{state:>10}  {count}")
        typer.echo(f"{'due now':>10}  {result['due_now']}")
        for host in result["troubled_hosts"]:
            paused = " (paused)" if host["paused"] else ""
            typer.echo(f"host {host['host']}: {host['health']}{paused} {host['last_error'] or ''}")

    _echo(result, json_output, text)


@queue_app.command("dead")
def dead(
    account: Annotated[str | None, typer.Option(help="account handle")] = None,
    host: HostOpt = None,
    activity: Annotated[int | None, typer.Option(help="activity row id")] = None,
    post: Annotated[int | None, typer.Option(help="post id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    json_output: JsonOpt = False,
) -> None:
    """List dead letters, newest first."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            return await list_dead_letters(
                session,
                account_handle=account,
                host=host,
                activity_id=activity,
                post_id=post,
                limit=limit,
            )

    letters = run_with_database(work)

    def text() -> None:
        for letter in letters:
            typer.echo(
                f"{letter['id']}  activity {letter['activity_id']}  {letter['inbox']}  "
                f"attempts {letter['attempts']}  {letter['last_error'] or ''}"
            )

    _echo(letters, json_output, text)


@queue_app.command("retry")
def retry(
    ids: Ids = None, host: HostOpt = None, all_dead: AllOpt = False, json_output: JsonOpt = False
) -> None:
    """Start the retry schedule again for deliveries (ids, a host's, or every dead one)."""
    selection = _selection(ids, host, all_dead)

    async def work(database: Database) -> list[int]:
        async with database.transaction() as session:
            woken = await retry_deliveries(session, selection)
        await wake_workers(woken)
        return woken

    woken = run_with_database(work)
    _echo(
        {"activities": len(woken)},
        json_output,
        lambda: typer.echo(f"retrying deliveries of {len(woken)} activities"),
    )


@queue_app.command("discard")
def discard(
    ids: Ids = None, host: HostOpt = None, all_dead: AllOpt = False, json_output: JsonOpt = False
) -> None:
    """Give up on deliveries for good (ids, a host's dead and parked ones, or every dead one)."""
    selection = _selection(ids, host, all_dead)

    async def work(database: Database) -> int:
        async with database.transaction() as session:
            return await discard_deliveries(session, selection)

    count = run_with_database(work)
    _echo({"discarded": count}, json_output, lambda: typer.echo(f"discarded {count} deliveries"))


def _set_paused(host: str, paused: bool, json_output: bool) -> None:
    async def work(database: Database) -> list[int]:
        async with database.transaction() as session:
            woken = await set_host_paused(session, host, paused)
        await wake_workers(woken)
        return woken

    woken = run_with_database(work)
    state = "paused" if paused else "resumed"
    _echo(
        {"host": host.lower(), "paused": paused, "activities": len(woken)},
        json_output,
        lambda: typer.echo(f"{state} deliveries to {host.lower()}"),
    )


@queue_app.command("pause-host")
def pause_host(host: str, json_output: JsonOpt = False) -> None:
    """Hold every delivery to a host (nothing fails; resume releases them)."""
    _set_paused(host, True, json_output)


@queue_app.command("resume-host")
def resume_host(host: str, json_output: JsonOpt = False) -> None:
    """Release the deliveries held for a paused host."""
    _set_paused(host, False, json_output)
