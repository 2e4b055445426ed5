"""Command line for an account's community: `fedirelay accounts alias|move|migration|backfill`,
`fedirelay followers export` and `fedirelay following import`.

Registered on the main app by `service.cli.commands` through `register_community_commands`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from federation.activitypub.urls import InstanceUrls
from service.accounts.store import AccountNotFound, AccountStore
from service.cli.runtime import cli_failure, run_with_database, wake_workers
from service.community.backfill import MAX_BACKFILL
from service.db.engine import Database
from service.runtime.settings import get_settings

if TYPE_CHECKING:
    from service.publishing.activity_records import PublishedActivity

# What talks to remote servers (httpx and, through it, rich) is imported by the commands
# that need it: `fedirelay worker` starts through this command line too.

accounts_app = typer.Typer()
followers_app = typer.Typer(help="Export an account's followers.", no_args_is_help=True)
following_app = typer.Typer(help="Accounts the relay follows.", no_args_is_help=True)


def register_community_commands(app: typer.Typer, accounts: typer.Typer) -> None:
    """Put this module's commands on the `fedirelay` app and its `accounts` group."""
    for command in accounts_app.registered_commands:
        accounts.registered_commands.append(command)
    app.add_typer(followers_app, name="followers")
    app.add_typer(following_app, name="following")


@accounts_app.command("alias")
def accounts_alias(
    handle: str,
    old: Annotated[
        str, typer.Option("--from", help="the old account: acct:user@server or its actor URL")
    ],
) -> None:
    """Prepare moving an existing account's followers here (adds it to alsoKnownAs)."""
    from service.community.account_moves import MigrationRefused, add_alias
    from service.remote.accounts import RemoteAccounts, signer_for

    settings = get_settings()
    urls = InstanceUrls(settings.base_url)

    async def work(database: Database) -> tuple[str, int | None, tuple[str, ...]]:
        async with database.transaction() as session:
            account = await AccountStore(session).get(handle)
            async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
                added = await add_alias(
                    session, account, old, remote, urls, settings.effective_domain
                )
            return added.migration.remote_actor_uri, added.migration.expected_followers, added.steps

    try:
        actor, expected, steps = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    except MigrationRefused as exc:
        raise cli_failure(exc.detail) from exc
    typer.echo(f"@{handle} is now also known as {actor}")
    if expected is not None:
        typer.echo(f"the old account has {expected} followers")
    typer.echo("next steps:")
    for number, step in enumerate(steps, start=1):
        typer.echo(f"  {number}. {step}")


@accounts_app.command("move")
def accounts_move(
    handle: str,
    to: Annotated[str, typer.Option("--to", help="the new account: acct:user@server")],
) -> None:
    """Move this account's followers to another account (which must alias this one)."""
    from service.community.account_moves import MigrationRefused, move_account
    from service.remote.accounts import RemoteAccounts, signer_for

    settings = get_settings()
    urls = InstanceUrls(settings.base_url)

    async def work(database: Database) -> tuple[str, PublishedActivity]:
        async with database.transaction() as session:
            account = await AccountStore(session).get(handle)
            async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
                sent = await move_account(
                    session,
                    account,
                    to,
                    remote,
                    urls,
                    domain=settings.effective_domain,
                    cooldown=timedelta(days=settings.move_cooldown_days),
                )
        await wake_workers([sent.published.activity_row_id])
        return sent.migration.remote_actor_uri, sent.published

    try:
        target, published = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    except MigrationRefused as exc:
        raise cli_failure(exc.detail) from exc
    typer.echo(f"@{handle} moved to {target}")
    typer.echo(f"Move sent to {published.delivery_count} inboxes ({published.activity_uri})")


@accounts_app.command("migration")
def accounts_migration(
    handle: str, json_output: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Show aliases, moves and how many followers have arrived."""
    from service.community.account_moves import migration_status

    async def work(database: Database) -> dict[str, object]:
        async with database.session() as session:
            return await migration_status(session, await AccountStore(session).get(handle))

    try:
        status = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    if json_output:
        typer.echo(json.dumps(status, indent=2))
        return
    typer.echo(f"@{handle}: {status['followers']} followers")
    if status["moved_to"]:
        typer.echo(f"moved to {status['moved_to']} on {status['moved_at']}")
    for entry in status["incoming"]:  # type: ignore[attr-defined]
        expected = entry["followers_expected"]
        of = f" of {expected}" if expected is not None else ""
        typer.echo(
            f"from {entry['address'] or entry['from']}: {entry['followers_arrived']}{of} "
            f"followers arrived since {entry['started_at']}"
        )


@accounts_app.command("backfill")
def accounts_backfill(
    handle: str, count: Annotated[int, typer.Argument(min=0, max=MAX_BACKFILL)]
) -> None:
    """Send the latest COUNT posts to each new follower (0 turns it off)."""

    async def work(database: Database) -> None:
        async with database.transaction() as session:
            await AccountStore(session).update(handle, backfill_count=count)

    try:
        run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    typer.echo(f"@{handle} sends its latest {count} posts to new followers")


@followers_app.command("export")
def followers_export(
    handle: str,
    output_format: Annotated[str, typer.Option("--format", help="csv (Mastodon) or json")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default stdout)")
    ] = None,
) -> None:
    """Export followers: CSV in Mastodon's follow-list format, or JSON with inboxes."""
    from service.community.follower_export import follower_records, followers_csv, followers_json
    from service.remote.accounts import RemoteAccounts, signer_for

    if output_format not in ("csv", "json"):
        raise cli_failure("--format is csv or json", 2)
    settings = get_settings()
    urls = InstanceUrls(settings.base_url)

    async def work(database: Database) -> str:
        async with database.transaction() as session:
            account = await AccountStore(session).get(handle)
            async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
                records = await follower_records(session, account, remote)
            if output_format == "json":
                return json.dumps(followers_json(account, urls, records), indent=2) + "\n"
            return followers_csv(records)

    try:
        text = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@following_app.command("import")
def following_import(
    handle: str,
    csv_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Follow every account of a Mastodon follow list (following_accounts.csv)."""
    from service.community.follower_export import import_following
    from service.remote.accounts import RemoteAccounts, signer_for

    settings = get_settings()
    urls = InstanceUrls(settings.base_url)
    text = csv_file.read_text(encoding="utf-8")

    async def work(database: Database) -> dict[str, object]:
        async with database.transaction() as session:
            account = await AccountStore(session).get(handle)
            async with RemoteAccounts(settings, signer_for(account, urls)) as remote:
                report = await import_following(session, account, text, remote, urls)
        await wake_workers([item.activity_row_id for item in report.published])
        return report.as_json()

    try:
        report = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    typer.echo(json.dumps(report, indent=2))
