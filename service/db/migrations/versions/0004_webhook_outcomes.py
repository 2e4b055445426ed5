"""webhooks: retry bookkeeping on stored events, counts of rejected requests

Revision ID: 0004_webhook_outcomes
Revises: 0003_instance_actor
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db.types

revision = "0004_webhook_outcomes"
down_revision = "0003_instance_actor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("next_attempt_at", service.db.types.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "webhook_rejections",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            service.db.types.UTCDateTime(),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source", "reason"),
    )


def downgrade() -> None:
    op.drop_table("webhook_rejections")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
