"""The relay's persistent state. The database is the source of truth; Redis only carries jobs.

Timestamps are timezone-aware UTC. JSON documents are stored exactly as published so that an
object dereferenced at its id is byte-for-byte the JSON it was delivered with.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.db.types import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Account(Base):
    """A local actor: one fediverse presence such as @blog@news.example.com."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    header_url: Mapped[str | None] = mapped_column(String(2048))
    profile_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actor_type: Mapped[str] = mapped_column(String(32), default="Service")
    manually_approves_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True)
    indexable: Mapped[bool] = mapped_column(Boolean, default=True)
    show_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    also_known_as: Mapped[list[Any]] = mapped_column(JSON, default=list)
    moved_to: Mapped[str | None] = mapped_column(String(2048))
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    object_type: Mapped[str] = mapped_column(String(16), default="Note")
    max_post_length: Mapped[int] = mapped_column(Integer, default=500)
    language: Mapped[str | None] = mapped_column(String(16))
    # Which sources and event types this account publishes, and with which templates.
    routing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    templates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    backfill_count: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), server_default=func.now(), onupdate=func.now()
    )

    keys: Mapped[list[AccountKey]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )


class AccountKey(Base):
    """Key material of an account. Retired keys are kept so rotation can be audited."""

    __tablename__ = "account_keys"
    __table_args__ = (Index("ix_account_keys_active", "account_id", "kind", "retired_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "rsa" or "ed25519"
    private_pem: Mapped[str] = mapped_column(Text)
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[Account] = relationship(back_populates="keys")


class RemoteActor(Base):
    """What the protocol needs about a remote actor: where to deliver and how to verify it."""

    __tablename__ = "remote_actors"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    handle: Mapped[str | None] = mapped_column(String(255))
    inbox: Mapped[str | None] = mapped_column(String(2048))
    shared_inbox: Mapped[str | None] = mapped_column(String(2048))
    key_id: Mapped[str | None] = mapped_column(String(2048), index=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    also_known_as: Mapped[list[Any]] = mapped_column(JSON, default=list)
    moved_to: Mapped[str | None] = mapped_column(String(2048))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class Follower(Base):
    __tablename__ = "followers"
    __table_args__ = (
        UniqueConstraint("account_id", "actor_uri", name="uq_followers_account_actor"),
        Index("ix_followers_account_state", "account_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    actor_uri: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255), index=True)
    inbox: Mapped[str] = mapped_column(String(2048))
    shared_inbox: Mapped[str | None] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default="accepted")  # pending | accepted
    follow_activity_id: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class Following(Base):
    """Accounts the relay follows (rare: imported following lists)."""

    __tablename__ = "following"
    __table_args__ = (UniqueConstraint("account_id", "actor_uri", name="uq_following"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    actor_uri: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    follow_activity_id: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class Post(Base):
    """An object the relay publishes (Note/Article), with its source mapping and lifecycle."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("account_id", "source", "source_id", name="uq_posts_source"),
        Index("ix_posts_account_published", "account_id", "published_at"),
        Index("ix_posts_state_scheduled", "state", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    object_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    object_type: Mapped[str] = mapped_column(String(16), default="Note")
    source: Mapped[str] = mapped_column(String(32))  # cms | ghost | forgejo | github | api | feed
    source_id: Mapped[str] = mapped_column(String(512))
    canonical_url: Mapped[str | None] = mapped_column(String(2048))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # scheduled | published | cancelled | deleted
    state: Mapped[str] = mapped_column(String(16), default="published")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    webhook_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class Activity(Base):
    """An activity the relay published (Create/Update/Delete/Accept/Move...)."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    activity_type: Mapped[str] = mapped_column(String(32))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Whether it belongs in the public outbox (Accepts and direct activities do not).
    in_outbox: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class Delivery(Base):
    """One activity to one inbox. Followers sharing an inbox share one delivery."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("activity_id", "inbox", name="uq_deliveries_activity_inbox"),
        Index("ix_deliveries_state_due", "state", "next_attempt_at"),
        Index("ix_deliveries_host_state", "host", "state"),
        Index("ix_deliveries_order", "inbox", "ordering_key", "id"),
        # Claims walk one activity's deliveries in id order from a cursor.
        Index("ix_deliveries_activity", "activity_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    inbox: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255))
    # Set when this delivery goes to a Mastodon account through its REST API instead of an inbox.
    mastodon_target_id: Mapped[int | None] = mapped_column(
        ForeignKey("mastodon_targets.id", ondelete="CASCADE")
    )
    # Activities about one object share an ordering key, so an Update never overtakes its Create.
    ordering_key: Mapped[str | None] = mapped_column(String(2048))
    # pending | in_flight | delivered | retrying | parked | dead | discarded
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    # Indexed for the monitoring window queries (throughput, latency percentiles).
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class DestinationHost(Base):
    """Health of a remote server, shared by every delivery to it."""

    __tablename__ = "destination_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    # ok | failing | unavailable
    health: Mapped[str] = mapped_column(String(16), default="ok")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Distinct UTC days with failures since the last success (Mastodon's 7-day rule).
    failure_days: Mapped[list[Any]] = mapped_column(JSON, default=list)
    breaker_open_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)


class InboxActivity(Base):
    """A verified activity received in an inbox, persisted before the 202 answer."""

    __tablename__ = "inbox_activities"
    __table_args__ = (
        # The sweeper looks for rows still `received`; erasing a deleted actor finds its rows.
        Index("ix_inbox_activities_state_received", "state", "received_at"),
        Index("ix_inbox_activities_actor", "actor_uri"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    actor_uri: Mapped[str] = mapped_column(String(2048))
    activity_type: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_id: Mapped[str | None] = mapped_column(String(2048))
    # received | processed | ignored | failed
    state: Mapped[str] = mapped_column(String(16), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Interaction(Base):
    """A like, boost or reply to one of our posts."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_post_kind", "post_id", "kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # like | boost | reply
    actor_uri: Mapped[str] = mapped_column(String(2048), index=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    url: Mapped[str | None] = mapped_column(String(2048))
    content_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FollowerSnapshot(Base):
    __tablename__ = "follower_snapshots"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    followers: Mapped[int] = mapped_column(Integer)


class WebhookEvent(Base):
    """A received webhook, stored raw before it is answered so nothing accepted is lost."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("source", "delivery_key", name="uq_webhook_delivery"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    delivery_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # received | processed | ignored | failed | scheduled
    state: Mapped[str] = mapped_column(String(16), default="received")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The last processing failure; kept after a later success, for the record.
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Failed processing attempts so far, and when a `received` event may be tried again
    # (None: as soon as a worker gets to it).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookRejection(Base):
    """How many webhook requests were refused before storage, by source and reason.

    Each API process counts in memory and adds its counts here in one statement every few
    seconds, so a flood of bad requests costs no database write per request, and every
    process reads the same cluster-wide totals.
    """

    __tablename__ = "webhook_rejections"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class BlockedDomain(Base):
    __tablename__ = "blocked_domains"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class MastodonTarget(Base):
    """An existing Mastodon account that an account also publishes to via the REST API."""

    __tablename__ = "mastodon_targets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    instance_url: Mapped[str] = mapped_column(String(2048))
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class MastodonStatus(Base):
    """Which Mastodon status a post became on a target, so updates and deletes find it."""

    __tablename__ = "mastodon_statuses"
    __table_args__ = (UniqueConstraint("target_id", "post_id", name="uq_mastodon_status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("mastodon_targets.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    status_id: Mapped[str | None] = mapped_column(String(64))
    status_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    # Interaction counts read back from the Mastodon API (analytics), with when they were read.
    favourites_count: Mapped[int | None] = mapped_column(Integer)
    reblogs_count: Mapped[int | None] = mapped_column(Integer)
    replies_count: Mapped[int | None] = mapped_column(Integer)
    counts_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AccountMigration(Base):
    """An account move: `in` brings an old account's followers here, `out` sends ours away."""

    __tablename__ = "account_migrations"
    __table_args__ = (Index("ix_account_migrations_account", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    remote_actor_uri: Mapped[str] = mapped_column(String(2048))
    remote_address: Mapped[str | None] = mapped_column(String(512))
    # Move in: the old account's follower count when the alias was added.
    expected_followers: Mapped[int | None] = mapped_column(Integer)
    followers_before: Mapped[int] = mapped_column(Integer, default=0)
    move_activity_uri: Mapped[str | None] = mapped_column(String(2048))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeedSubscription(Base):
    """An RSS/Atom feed the relay polls for a CMS that cannot send webhooks."""

    __tablename__ = "feed_subscriptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    # Handles of the accounts that publish the feed's entries.
    accounts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=900)
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class FeedEntry(Base):
    """An entry seen in a polled feed, with a digest of its content to notice edits."""

    __tablename__ = "feed_entries"
    __table_args__ = (UniqueConstraint("subscription_id", "entry_id", name="uq_feed_entries"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("feed_subscriptions.id", ondelete="CASCADE")
    )
    entry_id: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ForgeRepositoryState(Base):
    """What the last poll of a forge repository saw, so the next poll can tell what is new."""

    __tablename__ = "forge_repository_states"

    full_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    stargazers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    star_count: Mapped[int] = mapped_column(Integer, default=0)
    # Releases published before the repository was first polled are history, not news.
    watched_since: Mapped[datetime] = mapped_column(UTCDateTime())
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InstanceKey(Base):
    """The instance actor's key: signs the relay's own GETs of remote documents, which servers
    in authorized-fetch mode require. One row (id 1), created on first use."""

    __tablename__ = "instance_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
