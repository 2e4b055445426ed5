"""instance actor key

Revision ID: 0003_instance_actor
Revises: 0002_delivery_claim_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db.types

revision = "0003_instance_actor"
down_revision = "0002_delivery_claim_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            service.db.types.UTCDateTime(),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("instance_keys")
