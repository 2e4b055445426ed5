"""delivery: index deliveries by activity and id for cursor claims

Revision ID: 0002_delivery_claim_index
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_delivery_claim_index"
down_revision = "0002_ops_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_activity", "deliveries", ["activity_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_activity", table_name="deliveries")
