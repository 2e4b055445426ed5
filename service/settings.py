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
    data_dir: Path = Field(Path("var"), description="Where the SQLite file and embedded Redis live.")
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
    log_format: str = Field("console", description="`console` (development) or `json`.")
    log_level: str = Field("INFO", description="Log level.")

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
