"""Runtime settings, read from the environment with the FEDIRELAY_ prefix.

Every field here is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEDIRELAY_", env_file=None, extra="ignore")

    listen_host: str = Field("127.0.0.1", description="Address the HTTP service binds to.")
    listen_port: int = Field(8000, description="Port the HTTP service binds to.")
    base_url: str = Field(
        "http://localhost:8000",
        description="Public base URL; every ActivityPub id is built from it.",
    )
    domain: str | None = Field(
        None, description="WebFinger domain (acct:user@domain); defaults to the base URL's host."
    )
    data_dir: Path = Field(
        Path("var"), description="Where the SQLite file and embedded Redis live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; defaults to SQLite in the data directory."
    )
    redis_url: str | None = Field(
        None, description="Redis URL; unset starts an embedded redis-server (development)."
    )
    queue_name: str = Field("fedirelay:queue", description="arq queue name in Redis.")
    admin_token: str | None = Field(
        None, description="Bearer token for the admin API and dashboard; unset disables both."
    )
    secret_key: str | None = Field(
        None,
        description="Secret for encrypting stored API tokens and signing cookies; "
        "derived from the admin token when unset.",
    )
    test_mode: bool = Field(
        False, description="Allow plain http and private/loopback peers. Never in production."
    )
    max_webhook_body_bytes: int = Field(1_048_576, description="Largest accepted webhook body.")
    max_inbox_body_bytes: int = Field(1_048_576, description="Largest accepted inbox POST body.")
    max_admin_body_bytes: int = Field(262_144, description="Largest accepted admin API body.")
    authorized_fetch: bool = Field(
        False, description="Require signed GETs for ActivityPub documents."
    )
    inbox_rate_limit_per_second: float = Field(
        200.0,
        description="Inbox POSTs accepted per second from one client address "
        "(sustained; 0 disables the limit).",
    )
    inbox_rate_limit_burst: int = Field(
        1000, description="Inbox POSTs one client address may send in a burst."
    )
    inbox_retention_days: int = Field(
        30, description="Days a processed inbox activity is kept (for idempotency and audit)."
    )
    move_cooldown_days: int = Field(
        30, description="Days an account must wait after moving before it may move again."
    )
    mastodon_counts_refresh_days: int = Field(
        7,
        description="Interaction counts of Mastodon API statuses are refreshed while the "
        "post is younger than this many days.",
    )
    feed_poll_interval_seconds: int = Field(
        900, description="Default interval between two polls of a subscribed RSS/Atom feed."
    )
    log_format: str = Field("console", description="`console` (development) or `json`.")
    log_level: str = Field("INFO", description="Log level.")
    cms_webhook_secrets: str = Field(
        "",
        description="Comma-separated Standard Webhooks secrets for /hooks/cms (`whsec_<base64>` "
        "or raw); list the old and new secret while rotating.",
    )
    ghost_webhook_secret: str | None = Field(None, description="Secret of the Ghost webhook.")
    forgejo_webhook_secret: str | None = Field(
        None, description="Secret of the Forgejo/Gitea webhook."
    )
    github_webhook_secret: str | None = Field(None, description="Secret of the GitHub webhook.")
    forge_base_url: str | None = Field(
        None, description="Forgejo/Gitea base URL polled for stars and missed releases."
    )
    forge_token: str | None = Field(None, description="API token for polling the forge.")
    forge_repositories: str = Field(
        "", description="Comma-separated `owner/name` repositories to poll on the forge."
    )
    star_milestones: str = Field(
        "10,100,1000,10000,100000",
        description="Comma-separated star counts announced as milestones.",
    )
    delivery_concurrency: int = Field(
        256, description="Deliveries in progress at once per worker process (all hosts)."
    )
    delivery_per_host_concurrency: int = Field(
        4,
        description="Deliveries in progress at once per worker process to one host "
        "(each keeps a keep-alive connection open).",
    )
    delivery_batch_size: int = Field(
        64,
        description="Deliveries claimed from the database per claim, at most (claims run "
        "just ahead of the senders; a process never holds more than delivery_concurrency).",
    )
    delivery_signing_threads: int = Field(
        1,
        ge=0,
        description="Threads that make delivery signatures while the event loop does the "
        "I/O (RSA signing releases the GIL); 0 signs on the event loop.",
    )
    delivery_lease_seconds: float = Field(
        120.0,
        description="How long a claimed delivery belongs to its worker before another may "
        "take it over (must exceed the 30 s request timeout).",
    )
    delivery_max_retries: int = Field(
        16, description="Retries of a failing delivery before it becomes a dead letter."
    )
    delivery_retry_time_scale: float = Field(
        1.0, description="Multiplies every retry wait; below 1 only for tests."
    )
    webhook_max_retries: int = Field(
        8,
        ge=0,
        description="Retries of a stored webhook whose processing fails (after 16 s, 31 s, "
        "96 s, ... about 2.5 hours in all) before it is marked failed.",
    )

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fedirelay.db').resolve()}"

    @property
    def cms_secret_list(self) -> list[str]:
        return [item.strip() for item in self.cms_webhook_secrets.split(",") if item.strip()]

    @property
    def forge_repository_list(self) -> list[str]:
        return [item.strip() for item in self.forge_repositories.split(",") if item.strip()]

    @property
    def star_milestone_list(self) -> list[int]:
        return sorted(
            {int(item) for item in self.star_milestones.split(",") if item.strip().isdigit()}
        )

    @property
    def effective_domain(self) -> str:
        return self.domain or urlsplit(self.base_url).netloc

    @property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        if self.admin_token:
            return "derived:" + self.admin_token
        return "development-only-secret"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
