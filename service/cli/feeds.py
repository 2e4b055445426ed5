"""`fedirelay feeds`: polled RSS/Atom feed subscriptions from the command line (list,
subscribe, show, remove, poll now), through the same functions as `/api/admin/feeds`. Every
command takes `--json` for scripts; `--json` prints what the admin API answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from federation.activitypub.urls import InstanceUrls
from service.cli.operations import JsonOpt, print_json
from service.cli.runtime import cli_failure, optional_queue, run_with_database
from service.db.engine import Database
from service.polling.feed_subscriptions import (
    FeedSubscriptionCreate,
    FeedSubscriptionError,
    add_subscription,
    feed_view,
    get_subscription,
    list_subscriptions,
    poll_subscription,
    remove_subscription,
)
from service.runtime.settings import get_settings

feeds_app = typer.Typer(help="Manage polled RSS/Atom feed subscriptions.", no_args_is_help=True)

FeedId = Annotated[int, typer.Argument(help="feed subscription id", min=1)]
T = TypeVar("T")


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    try:
        return run_with_database(work)
    except FeedSubscriptionError as error:
        raise cli_failure(str(error)) from error


def _print_feed(view: dict[str, Any]) -> None:
    accounts = ", ".join(view["accounts"]) or "(routing decides)"
    typer.echo(f"{view['id']}  {view['url']}  every {view['interval_seconds']} s  {accounts}")


@feeds_app.command("list")
def feeds_list(json_output: JsonOpt = False) -> None:
    """Feed subscriptions, oldest first."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            return [feed_view(row) for row in await list_subscriptions(session)]

    views = _run(work)
    if json_output:
        print_json(views)
        return
    for view in views:
        _print_feed(view)


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="the feed's http(s) URL")],
    account: Annotated[
        list[str] | None,
        typer.Option("--account", help="handle publishing its entries (repeatable)"),
    ] = None,
    interval: Annotated[
        int | None, typer.Option("--interval", help="seconds between polls (60-86400)")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Subscribe a feed; its first poll only records what the feed already holds."""
    try:
        body = FeedSubscriptionCreate(url=url, accounts=account or [], interval_seconds=interval)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise cli_failure(problems, 2) from error
    settings = get_settings()

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            return feed_view(await add_subscription(session, settings, body))

    view = _run(work)
    if json_output:
        print_json(view)
        return
    typer.echo(f"subscribed feed {view['id']}")
    _print_feed(view)


@feeds_app.command("show")
def feeds_show(subscription_id: FeedId, json_output: JsonOpt = False) -> None:
    """One feed subscription and how its last poll went."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            return feed_view(await get_subscription(session, subscription_id))

    view = _run(work)
    if json_output:
        print_json(view)
        return
    for name, value in view.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        typer.echo(f"{name:16} {'-' if shown in (None, '') else shown}")


@feeds_app.command("remove")
def feeds_remove(subscription_id: FeedId, json_output: JsonOpt = False) -> None:
    """Stop polling a feed (posts already published stay)."""

    async def work(database: Database) -> None:
        async with database.transaction() as session:
            await remove_subscription(session, subscription_id)

    _run(work)
    if json_output:
        print_json({"id": subscription_id, "removed": True})
        return
    typer.echo(f"removed feed {subscription_id}")


@feeds_app.command("poll")
def feeds_poll(subscription_id: FeedId, json_output: JsonOpt = False) -> None:
    """Poll a feed now instead of waiting for its schedule."""
    settings = get_settings()

    async def work(database: Database) -> dict[str, Any]:
        async with optional_queue() as queue:
            return await poll_subscription(
                settings, database, InstanceUrls(settings.base_url), queue, subscription_id
            )

    result = _run(work)
    if json_output:
        print_json(result)
    else:
        typer.echo(
            f"feed {subscription_id}: status {result['status'] or '-'}, "
            f"{len(result['new'])} new, {len(result['changed'])} changed, "
            f"{result['baseline']} recorded as already published"
        )
    if result["error"]:
        raise cli_failure(f"polling feed {subscription_id} failed: {result['error']}")
