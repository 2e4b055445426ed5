"""forge polling: what the last poll of each forge repository saw

Revision ID: 0002_forge_polling
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db.types

revision = "0002_forge_polling"
down_revision = "0002_community"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forge_repository_states",
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("stargazers", sa.JSON(), nullable=False),
        sa.Column("star_count", sa.Integer(), nullable=False),
        sa.Column("watched_since", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("polled_at", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("full_name"),
    )


def downgrade() -> None:
    op.drop_table("forge_repository_states")
