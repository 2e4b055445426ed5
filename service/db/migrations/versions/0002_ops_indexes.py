"""ops: index delivery attempts by time for the monitoring window queries

Revision ID: 0002_ops_indexes
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_ops_indexes"
down_revision = "0002_inbox_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_delivery_attempts_attempted_at", "delivery_attempts", ["attempted_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_attempted_at", table_name="delivery_attempts")
