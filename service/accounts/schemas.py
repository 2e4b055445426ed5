"""The admin API's account shapes (shared by the HTTP API and the CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from federation.activitypub.handles import InvalidHandle, validate_handle
from federation.activitypub.urls import InstanceUrls
from service.db.models import Account

ActorType = Literal["Service", "Organization", "Person", "Application", "Group"]
ObjectType = Literal["Note", "Article"]
NULLABLE_COLUMNS = frozenset({"avatar_url", "header_url", "language"})


class ProfileFieldModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    value: str = Field(max_length=2048)


class AccountChanges(BaseModel):
    """Fields an operator may set; all optional so PATCH changes only what it names."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=200)
    summary: str | None = Field(None, max_length=5000, description="HTML; sanitized on output.")
    avatar_url: AnyHttpUrl | None = None
    header_url: AnyHttpUrl | None = None
    profile_fields: list[ProfileFieldModel] | None = Field(None, max_length=16)
    actor_type: ActorType | None = None
    manually_approves_followers: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    show_followers: bool | None = None
    also_known_as: list[AnyHttpUrl] | None = Field(None, max_length=16)
    object_type: ObjectType | None = None
    max_post_length: int | None = Field(None, ge=50, le=100_000)
    language: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)*$")

    @model_validator(mode="after")
    def _no_null_for_required_columns(self) -> AccountChanges:
        # Absent means "leave as is"; an explicit null may only clear a column that allows it.
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in NULLABLE_COLUMNS:
                raise ValueError(f"{name} may not be null")
        return self

    def to_columns(self) -> dict[str, object]:
        columns: dict[str, object] = {}
        for name, value in self.model_dump(exclude_unset=True).items():
            if name in ("avatar_url", "header_url") and value is not None:
                value = str(value)
            if name == "also_known_as" and value is not None:
                value = [str(item) for item in value]
            columns[name] = value
        return columns


class AccountCreate(AccountChanges):
    handle: str = Field(min_length=1, max_length=64, examples=["blog"])

    @field_validator("handle")
    @classmethod
    def _valid_handle(cls, value: str) -> str:
        try:
            return validate_handle(value)
        except InvalidHandle as exc:
            raise ValueError(str(exc)) from exc

    def to_columns(self) -> dict[str, object]:
        columns = super().to_columns()
        columns.pop("handle", None)
        return {name: value for name, value in columns.items() if value is not None}


class PublicKeyView(BaseModel):
    kind: str
    key_id: str
    public_key_pem: str
    created_at: datetime
    retired_at: datetime | None


class AccountView(BaseModel):
    handle: str
    address: str
    actor_id: str
    display_name: str
    summary: str
    avatar_url: str | None
    header_url: str | None
    profile_fields: list[ProfileFieldModel]
    actor_type: str
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    show_followers: bool
    also_known_as: list[str]
    moved_to: str | None
    object_type: str
    max_post_length: int
    language: str | None
    paused: bool
    created_at: datetime
    keys: list[PublicKeyView]

    @classmethod
    def of(cls, account: Account, urls: InstanceUrls, domain: str) -> AccountView:
        actor_urls = urls.account(account.handle)
        return cls(
            handle=account.handle,
            address=f"@{account.handle}@{domain}",
            actor_id=actor_urls.actor,
            display_name=account.display_name,
            summary=account.summary,
            avatar_url=account.avatar_url,
            header_url=account.header_url,
            profile_fields=[ProfileFieldModel(**item) for item in account.profile_fields],
            actor_type=account.actor_type,
            manually_approves_followers=account.manually_approves_followers,
            discoverable=account.discoverable,
            indexable=account.indexable,
            show_followers=account.show_followers,
            also_known_as=list(account.also_known_as),
            moved_to=account.moved_to,
            object_type=account.object_type,
            max_post_length=account.max_post_length,
            language=account.language,
            paused=account.paused,
            created_at=account.created_at,
            keys=[
                PublicKeyView(
                    kind=key.kind,
                    key_id=actor_urls.rsa_key if key.kind == "rsa" else actor_urls.ed25519_key,
                    public_key_pem=key.public_pem,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                )
                for key in sorted(account.keys, key=lambda k: (k.retired_at is None, k.id))
            ],
        )
