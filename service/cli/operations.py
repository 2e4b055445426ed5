"""Operations commands: `fedirelay status`, `fedirelay hosts`, `fedirelay posts ...`.

Each prints a short table for a human, or with `--json` the same document the monitoring
API returns. Dead-letter commands live under `fedirelay queue`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.cli.runtime import run_with_database
from service.db.engine import Database
from service.reporting import queries

if TYPE_CHECKING:
    from rich.console import Console

posts_app = typer.Typer(help="What happened to published posts.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def register_ops_commands(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("hosts")(hosts)
    app.add_typer(posts_app, name="posts")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {key: _plain(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _console() -> Console:
    # rich is imported here, not with the module: the worker starts through this command
    # line and never prints a table.
    from rich.console import Console

    # Wide enough that tables are not squeezed when output is piped.
    return Console(width=140, highlight=False)


def status(json_output: JsonOpt = False) -> None:
    """Queue depth, delivery rate and health at a glance."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            return await queries.overview(session, timedelta(minutes=15))

    result = run_with_database(work)
    if json_output:
        print_json(result)
        return
    depth: queries.QueueDepth = result["queue"]
    flow = result["throughput"]
    counts = "  ".join(f"{state} {count}" for state, count in depth.counts.items())
    typer.echo(f"queue      {counts}")
    typer.echo(f"oldest     {depth.oldest_ready_age_seconds:.0f} s waiting for a worker")
    rate = "-" if flow["success_rate"] is None else f"{flow['success_rate'] * 100:.1f} %"
    latency = " ".join(
        f"{name} {value if value is not None else '-'}"
        for name, value in flow["latency_ms"].items()
    )
    typer.echo(
        f"last 15 m  {flow['delivered']} delivered, {flow['failed']} failed ({rate} ok), "
        f"{flow['deliveries_per_minute']:.1f}/min, latency ms {latency}"
    )
    typer.echo("hosts      " + "  ".join(f"{k} {v}" for k, v in result["hosts"].items()))
    typer.echo("followers  " + "  ".join(f"{k} {v}" for k, v in result["followers"].items()))
    webhooks: queries.WebhookSummary = result["webhooks"]
    refused = sum(sum(reasons.values()) for reasons in webhooks.rejected.values())
    typer.echo(
        f"webhooks   {webhooks.retrying} retrying, {webhooks.failed} failed, {refused} refused"
    )


def hosts(
    host: Annotated[str | None, typer.Argument(help="show only this host")] = None,
    unhealthy: Annotated[
        bool, typer.Option("--unhealthy", help="only hosts that are not ok")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 200,
    json_output: JsonOpt = False,
) -> None:
    """Destination hosts and their health, the troubled ones first."""
    from rich.table import Table

    async def work(database: Database) -> list[queries.HostStatus]:
        async with database.session() as session:
            if host is not None:
                one = await queries.host_status(session, host)
                return [one] if one is not None else []
            return await queries.host_statuses(session, unhealthy_only=unhealthy, limit=limit)

    rows = run_with_database(work)
    if host is not None and not rows:
        typer.echo(f"error: no delivery has gone to '{host}' yet", err=True)
        raise typer.Exit(1)
    if json_output:
        print_json(rows[0] if host is not None else rows)
        return
    table = Table("host", "status", "failing since", "failures", "waiting", "last error")
    for row in rows:
        waiting = ", ".join(f"{count} {state}" for state, count in row.waiting.items()) or "-"
        table.add_row(
            row.host, row.status, _when(row.failing_since), str(row.consecutive_failures),
            waiting, (row.last_error or "")[:60],
        )  # fmt: skip
    _console().print(table)


@posts_app.command("list")
def posts_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20, json_output: JsonOpt = False
) -> None:
    """Latest posts with delivery totals and interactions."""
    from rich.table import Table

    async def work(database: Database) -> list[queries.RecentPost]:
        async with database.session() as session:
            return await queries.recent_posts(session, limit=limit)

    rows = run_with_database(work)
    if json_output:
        print_json(rows)
        return
    table = Table(
        "post", "account", "published", "delivered", "not yet", "likes", "boosts", "replies"
    )
    for row in rows:
        table.add_row(
            str(row.post_id), f"@{row.account}", _when(row.published_at), str(row.delivered),
            str(row.not_delivered), str(row.likes), str(row.boosts), str(row.replies),
        )  # fmt: skip
    _console().print(table)


async def _report(database: Database, post_id: int) -> queries.PostReport | None:
    async with database.session() as session:
        return await queries.post_report(session, post_id)


@posts_app.command("show")
def posts_show(post_id: int, json_output: JsonOpt = False) -> None:
    """Where a post went, where it did not, and why."""
    from rich.table import Table

    report = run_with_database(lambda database: _report(database, post_id))
    if report is None:
        typer.echo(f"error: no post {post_id}", err=True)
        raise typer.Exit(1)
    if json_output:
        print_json(report)
        return
    console = _console()
    console.print(f"post {report.post_id} @{report.account} {report.state}  {report.object_uri}")
    followers = f"{report.accepted_followers} accepted followers now"
    console.print(f"published {_when(report.published_at)}, {followers}")
    for activity in report.activities:
        states = ", ".join(f"{count} {state}" for state, count in activity.states.items()) or "none"
        console.print(
            f"  {activity.activity_type:8} {_when(activity.created_at)}  deliveries: {states}"
        )
    console.print(f"delivered to {len(report.delivered_hosts)} host(s)")
    if report.not_delivered:
        table = Table("host", "state", "tries", "host status", "last error", title="not delivered")
        for item in report.not_delivered:
            error = f"HTTP {item.last_status} " if item.last_status else ""
            table.add_row(
                item.host,
                item.state,
                str(item.attempts),
                item.host_status,
                error + (item.last_error or "")[:60],
            )
        console.print(table)
    for reason in report.reasons:
        console.print(f"why: {reason}")


@posts_app.command("watch")
def posts_watch(
    post_id: int,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 600.0,
    interval: Annotated[float, typer.Option(help="seconds between checks")] = 1.0,
) -> None:
    """Follow a post's fan-out with a progress bar until every delivery has finished."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    finished_states = ("delivered", "dead", "discarded")

    async def work(database: Database) -> queries.PostReport | None:
        deadline = time.monotonic() + timeout
        report = await _report(database, post_id)
        if report is None:
            return None
        with Progress(
            TextColumn("[bold]post {task.fields[post]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=_console(),
        ) as progress:  # fmt: skip
            task = progress.add_task("deliveries", total=None, post=post_id, states="")
            while True:
                total = sum(activity.total for activity in report.activities)
                states: dict[str, int] = {}
                for activity in report.activities:
                    for state, count in activity.states.items():
                        states[state] = states.get(state, 0) + count
                done = sum(states.get(state, 0) for state in finished_states)
                summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
                progress.update(task, total=total, completed=done, states=summary)
                if done >= total or time.monotonic() > deadline:
                    return report
                await asyncio.sleep(interval)
                fresh = await _report(database, post_id)
                report = fresh if fresh is not None else report

    report = run_with_database(work)
    if report is None:
        typer.echo(f"error: no post {post_id}", err=True)
        raise typer.Exit(1)
    missing = sum(
        count
        for activity in report.activities
        for state, count in activity.states.items()
        if state not in finished_states
    )
    if missing:
        typer.echo(f"{missing} deliveries still unfinished after {timeout:.0f} s", err=True)
        raise typer.Exit(2)


@posts_app.command("scheduled")
def posts_scheduled(json_output: JsonOpt = False) -> None:
    """Posts waiting for their publication time, soonest first."""
    from rich.table import Table

    async def work(database: Database) -> list[queries.ScheduledPost]:
        async with database.session() as session:
            return await queries.scheduled_posts(session, limit=1000)

    rows = run_with_database(work)
    if json_output:
        print_json(rows)
        return
    table = Table("post", "account", "due (UTC)", "source", "title")
    for row in rows:
        table.add_row(
            str(row.post_id), f"@{row.account}", _when(row.scheduled_at), row.source, row.title[:60]
        )
    _console().print(table)
