"""The `fedirelay` command line: serve, work, migrate, run everything, and manage accounts."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from redis.exceptions import RedisError

from federation.activitypub.handles import InvalidHandle
from federation.activitypub.urls import InstanceUrls
from service.accounts.schemas import AccountChanges, AccountCreate, AccountView
from service.accounts.store import AccountExists, AccountNotFound, AccountStore
from service.cli.queue import queue_app
from service.cli.runtime import cli_failure, run_with_database, wake_workers
from service.db.engine import Database
from service.publishing.profile_updates import publish_profile_update
from service.runtime.settings import Settings, get_settings

app = typer.Typer(help="fedirelay: webhooks in, ActivityPub out.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts (fediverse actors).", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(queue_app, name="queue")

DEMO_HANDLE = "demo"
REDIS_RETRY_SECONDS = 2


def _print_account(view: AccountView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        return
    typer.echo(f"{view.address}  {view.actor_id}  ({view.actor_type})")


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest schema."""
    from service.db.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP service (API, webhooks, inboxes, pages)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.listen_host,
        port=settings.listen_port,
        workers=workers,
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def worker(
    check: Annotated[bool, typer.Option("--check", help="exit 0 if a worker is healthy")] = False,
) -> None:
    """Run an arq worker (fan-out, delivery, scheduling, inbox processing)."""
    settings = get_settings()
    if check:
        _check_worker_health(settings)
    from arq.worker import run_worker

    from workers.worker import limit_malloc_arenas, worker_settings

    limit_malloc_arenas()
    try:
        options = worker_settings(settings)
    except RuntimeError as exc:
        raise cli_failure(str(exc)) from exc
    _use_uvloop()
    while True:
        try:
            run_worker(options)
            return
        except (RedisError, OSError) as exc:
            # arq stops when Redis goes away; the database still holds every job's work, so
            # wait for Redis instead of leaving recovery to a supervisor.
            typer.echo(f"worker lost Redis ({exc}); starting again in {REDIS_RETRY_SECONDS} s")
            time.sleep(REDIS_RETRY_SECONDS)


def _check_worker_health(settings: Settings) -> None:
    """Exit 0 with the worker's report if a worker runs on this host, else 1 with the reason
    (one line each: the chart's liveness probe shows it in the pod's events)."""
    from workers.health_check import worker_health

    health = asyncio.run(worker_health(settings))
    if not health.healthy:
        raise cli_failure(health.detail)
    typer.echo(health.detail)
    raise typer.Exit(0)


def _use_uvloop() -> None:
    # uvloop cuts the worker's per-delivery event-loop overhead by about an eighth.
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@accounts_app.command("list")
def accounts_list(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts."""
    settings = get_settings()
    urls = InstanceUrls(settings.base_url)

    async def work(database: Database) -> list[AccountView]:
        async with database.session() as session:
            accounts = await AccountStore(session).list()
            return [AccountView.of(a, urls, settings.effective_domain) for a in accounts]

    views = run_with_database(work)
    if json_output:
        typer.echo(json.dumps([v.model_dump(mode="json") for v in views], indent=2))
        return
    for view in views:
        _print_account(view, False)


def _parse_changes(options: dict[str, Any], model: type[AccountChanges]) -> AccountChanges:
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return model(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise cli_failure(problems, 2) from exc


def _profile_options(
    display_name: str | None,
    summary: str | None,
    actor_type: str | None,
    avatar_url: str | None,
    header_url: str | None,
    manually_approves_followers: bool | None,
    field: list[str] | None,
    object_type: str | None,
) -> dict[str, Any]:
    fields = None
    if field:
        fields = []
        for item in field:
            name, separator, value = item.partition("=")
            if not separator:
                raise cli_failure(f"--field takes NAME=VALUE, got '{item}'", 2)
            fields.append({"name": name, "value": value})
    return {
        "display_name": display_name,
        "summary": summary,
        "actor_type": actor_type,
        "avatar_url": avatar_url,
        "header_url": header_url,
        "manually_approves_followers": manually_approves_followers,
        "profile_fields": fields,
        "object_type": object_type,
    }


DisplayName = Annotated[str | None, typer.Option("--name", help="display name")]
Summary = Annotated[str | None, typer.Option(help="bio (HTML, sanitized)")]
ActorTypeOpt = Annotated[str | None, typer.Option("--type", help="Service, Organization, Person")]
Avatar = Annotated[str | None, typer.Option("--avatar", help="avatar image URL")]
Header = Annotated[str | None, typer.Option("--header", help="header image URL")]
Approves = Annotated[
    bool | None, typer.Option("--manual-approval/--auto-approval", help="approve follows by hand")
]
Fields = Annotated[list[str] | None, typer.Option("--field", help="profile field NAME=VALUE")]
ObjectTypeOpt = Annotated[str | None, typer.Option("--object-type", help="Note or Article")]
JsonOpt = Annotated[bool, typer.Option("--json")]


@accounts_app.command("create")
def accounts_create(
    handle: str,
    display_name: DisplayName = None,
    summary: Summary = None,
    actor_type: ActorTypeOpt = None,
    avatar_url: Avatar = None,
    header_url: Header = None,
    manually_approves_followers: Approves = None,
    field: Fields = None,
    object_type: ObjectTypeOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Create an account with fresh RSA and Ed25519 keys."""
    settings = get_settings()
    options = _profile_options(
        display_name, summary, actor_type, avatar_url, header_url,
        manually_approves_followers, field, object_type,
    )  # fmt: skip
    body = _parse_changes({"handle": handle, **options}, AccountCreate)
    assert isinstance(body, AccountCreate)

    async def work(database: Database) -> AccountView:
        async with database.transaction() as session:
            account = await AccountStore(session).create(body.handle, **body.to_columns())
            await session.refresh(account, ["keys"])
            return AccountView.of(
                account, InstanceUrls(settings.base_url), settings.effective_domain
            )

    try:
        view = run_with_database(work)
    except AccountExists as exc:
        raise cli_failure(f"account '{handle}' already exists") from exc
    except InvalidHandle as exc:
        raise cli_failure(str(exc), 2) from exc
    _print_account(view, json_output)


@accounts_app.command("show")
def accounts_show(handle: str, json_output: JsonOpt = False) -> None:
    """Show one account."""
    settings = get_settings()

    async def work(database: Database) -> AccountView:
        async with database.session() as session:
            account = await AccountStore(session).get(handle)
            return AccountView.of(
                account, InstanceUrls(settings.base_url), settings.effective_domain
            )

    try:
        view = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    if json_output:
        _print_account(view, True)
        return
    for name, value in view.model_dump(exclude={"keys"}).items():
        typer.echo(f"{name:28} {value}")
    for key in view.keys:
        state = "retired" if key.retired_at else "active"
        typer.echo(f"key {key.kind:8} {key.key_id} {state} since {key.created_at:%Y-%m-%d}")


@accounts_app.command("update")
def accounts_update(
    handle: str,
    display_name: DisplayName = None,
    summary: Summary = None,
    actor_type: ActorTypeOpt = None,
    avatar_url: Avatar = None,
    header_url: Header = None,
    manually_approves_followers: Approves = None,
    field: Fields = None,
    object_type: ObjectTypeOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Change an account's profile."""
    settings = get_settings()
    options = _profile_options(
        display_name, summary, actor_type, avatar_url, header_url,
        manually_approves_followers, field, object_type,
    )  # fmt: skip
    changes = _parse_changes(options, AccountChanges)

    async def work(database: Database) -> AccountView:
        urls = InstanceUrls(settings.base_url)
        async with database.transaction() as session:
            account = await AccountStore(session).update(handle, **changes.to_columns())
            published = await publish_profile_update(session, account, urls)
            view = AccountView.of(account, urls, settings.effective_domain)
        await wake_workers([published.activity_row_id])
        return view

    try:
        view = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    _print_account(view, json_output)


@accounts_app.command("delete")
def accounts_delete(
    handle: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False
) -> None:
    """Delete an account and everything it owns."""
    if not yes and not typer.confirm(f"Delete account '{handle}' and all its data?"):
        raise typer.Exit(1)

    async def work(database: Database) -> None:
        async with database.transaction() as session:
            await AccountStore(session).delete(handle)

    try:
        run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    typer.echo(f"deleted {handle}")


@accounts_app.command("rotate-keys")
def accounts_rotate_keys(handle: str, json_output: JsonOpt = False) -> None:
    """Retire an account's keys and issue new ones (remote servers re-fetch on next signature)."""
    settings = get_settings()

    async def work(database: Database) -> AccountView:
        urls = InstanceUrls(settings.base_url)
        async with database.transaction() as session:
            account = await AccountStore(session).rotate_keys(handle)
            published = await publish_profile_update(session, account, urls)
            view = AccountView.of(account, urls, settings.effective_domain)
        await wake_workers([published.activity_row_id])
        return view

    try:
        view = run_with_database(work)
    except AccountNotFound as exc:
        raise cli_failure(f"no account '{handle}'") from exc
    if json_output:
        _print_account(view, True)
        return
    typer.echo(f"rotated keys of {handle}")


def _ensure_admin_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    token_file = settings.data_dir / "admin-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24))
        token_file.chmod(0o600)
    return token_file.read_text().strip()


def _ensure_demo_account(settings: Settings) -> str:
    async def work(database: Database) -> str:
        async with database.transaction() as session:
            store = AccountStore(session)
            existing = await store.list()
            if existing:
                return existing[0].handle
            await store.create(
                DEMO_HANDLE,
                display_name="fedirelay demo",
                summary="<p>Announcements relayed by fedirelay.</p>",
            )
            return DEMO_HANDLE

    return run_with_database(work)


@app.command()
def run() -> None:
    """Development: migrate, create a demo account, start Redis, the API and a worker."""
    from service.db.migrate import upgrade
    from service.runtime.embedded_redis import EmbeddedRedis

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis: EmbeddedRedis | None = None
    environment = dict(os.environ)
    if not settings.redis_url:
        redis = EmbeddedRedis(settings.data_dir / "redis", port=settings.listen_port + 379)
        redis.start()
        environment["FEDIRELAY_REDIS_URL"] = redis.url
    token = _ensure_admin_token(settings)
    environment["FEDIRELAY_ADMIN_TOKEN"] = token
    upgrade(settings.effective_database_url)
    handle = _ensure_demo_account(settings)
    executable = [sys.executable, "-m", "service.cli"]
    children = [
        subprocess.Popen([*executable, "serve"], env=environment),  # noqa: S603
        subprocess.Popen([*executable, "worker"], env=environment),  # noqa: S603
    ]
    domain = settings.effective_domain
    base = settings.base_url
    sample_post = json.dumps(
        {
            "accounts": [handle],
            "title": "Hello fediverse",
            "url": f"{base}/hello",
            "content": "First post from fedirelay",
            "tags": ["fedirelay"],
        }
    )
    typer.echo(
        f"""
fedirelay is starting on {base}
  account:    @{handle}@{domain}
  webfinger:  curl '{base}/.well-known/webfinger?resource=acct:{handle}@{domain}'
  actor:      curl -H 'Accept: application/activity+json' {base}/users/{handle}
  dashboard:  {base}/ops   (admin token: {token}, also in {settings.data_dir}/admin-token)
  API docs:   {base}/docs
  publish a test post:
    curl -X POST {base}/api/admin/posts -H 'Authorization: Bearer {token}' \\
      -H 'Content-Type: application/json' \\
      -d '{sample_post}'
Press Ctrl-C to stop.
"""
    )
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis is not None:
            redis.stop()
        typer.echo("fedirelay stopped")


from service.cli.community import register_community_commands  # noqa: E402

register_community_commands(app, accounts_app)

from service.cli.feeds import feeds_app  # noqa: E402
from service.cli.operations import register_ops_commands  # noqa: E402
from service.cli.webhooks import webhooks_app  # noqa: E402

register_ops_commands(app)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(feeds_app, name="feeds")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
