"""`fedirelay webhooks`: stored webhook events from the command line (what was refused or
failed, and retrying failed ones). Every command takes `--json` for scripts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from service.cli.operations import JsonOpt, print_json
from service.cli.runtime import cli_failure, run_with_database, wake_webhook_processing
from service.db.engine import Database
from service.reporting import queries
from service.webhooks.manual_retries import WebhookSelection, retry_webhook_events

webhooks_app = typer.Typer(help="Inspect and retry stored webhooks.", no_args_is_help=True)

SourceOpt = Annotated[str | None, typer.Option("--source", help="cms, ghost, forgejo, github")]


@webhooks_app.command("status")
def status(json_output: JsonOpt = False) -> None:
    """Webhooks stored by state, refused by reason, retrying and failed."""

    async def work(database: Database) -> queries.WebhookSummary:
        async with database.session() as session:
            return await queries.webhook_summary(session)

    summary = run_with_database(work)
    if json_output:
        print_json(summary)
        return
    for source, states in sorted(summary.stored.items()):
        counts = "  ".join(f"{state} {count}" for state, count in sorted(states.items()))
        typer.echo(f"stored   {source:8} {counts}")
    for source, reasons in sorted(summary.rejected.items()):
        counts = "  ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        typer.echo(f"refused  {source:8} {counts}")
    typer.echo(f"retrying {summary.retrying}, failed {summary.failed}")


@webhooks_app.command("failed")
def failed(
    source: SourceOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Webhook events that used up their retries, newest first, with their last error."""

    async def work(database: Database) -> tuple[int, list[queries.FailedWebhook]]:
        async with database.session() as session:
            return await queries.failed_webhooks(session, source=source, limit=limit)

    total, events = run_with_database(work)
    if json_output:
        print_json({"total": total, "items": events})
        return
    for event in events:
        typer.echo(
            f"{event.event_id}  {event.source} {event.event_type}  attempts {event.attempts}  "
            f"{(event.error or '')[:100]}"
        )
    typer.echo(f"{total} failed")


@webhooks_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="webhook event ids")] = None,
    source: SourceOpt = None,
    all_failed: Annotated[bool, typer.Option("--all", help="every failed event")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Process webhook events again from scratch (ids, a source's failed ones, or all)."""
    if sum((bool(ids), source is not None, all_failed)) != 1:
        raise cli_failure("give webhook event ids, --source or --all (exactly one)", 2)
    selection = WebhookSelection(event_ids=ids or (), source=source, all_failed=all_failed)

    async def work(database: Database) -> list[int]:
        async with database.transaction() as session:
            retried = await retry_webhook_events(session, selection)
        await wake_webhook_processing(retried)
        return retried

    retried = run_with_database(work)
    result: dict[str, Any] = {"retried": len(retried), "event_ids": retried}
    if json_output:
        print_json(result)
    else:
        typer.echo(f"retrying {len(retried)} webhook event(s)")
