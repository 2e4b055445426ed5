"""inbox: index received activities by state and by actor

Revision ID: 0002_inbox_indexes
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_inbox_indexes"
down_revision = "0002_forge_polling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_inbox_activities_state_received",
        "inbox_activities",
        ["state", "received_at"],
        unique=False,
    )
    op.create_index("ix_inbox_activities_actor", "inbox_activities", ["actor_uri"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbox_activities_actor", table_name="inbox_activities")
    op.drop_index("ix_inbox_activities_state_received", table_name="inbox_activities")
