"""community: account migrations, polled feeds, Mastodon interaction counts

Revision ID: 0002_community
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db.types

revision = "0002_community"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("mastodon_statuses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("favourites_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reblogs_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replies_count", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "counts_fetched_at", service.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_table(
        "account_migrations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("remote_actor_uri", sa.String(length=2048), nullable=False),
        sa.Column("remote_address", sa.String(length=512), nullable=True),
        sa.Column("expected_followers", sa.Integer(), nullable=True),
        sa.Column("followers_before", sa.Integer(), nullable=False),
        sa.Column("move_activity_uri", sa.String(length=2048), nullable=True),
        sa.Column("started_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_account_migrations_account",
        "account_migrations",
        ["account_id", "started_at"],
        unique=False,
    )
    op.create_table(
        "feed_subscriptions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=512), nullable=True),
        sa.Column("last_modified", sa.String(length=128), nullable=True),
        sa.Column("next_poll_at", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_polled_at", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            service.db.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "feed_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("subscription_id", _ID, nullable=False),
        sa.Column("entry_id", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["feed_subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "entry_id", name="uq_feed_entries"),
    )


def downgrade() -> None:
    op.drop_table("feed_entries")
    op.drop_table("feed_subscriptions")
    op.drop_index("ix_account_migrations_account", table_name="account_migrations")
    op.drop_table("account_migrations")
    with op.batch_alter_table("mastodon_statuses", schema=None) as batch_op:
        batch_op.drop_column("counts_fetched_at")
        batch_op.drop_column("replies_count")
        batch_op.drop_column("reblogs_count")
        batch_op.drop_column("favourites_count")
