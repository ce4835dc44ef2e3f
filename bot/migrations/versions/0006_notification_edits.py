"""outbox rows may edit an earlier message (a task message whose step is done)

Revision ID: 0006_notification_edits
Revises: 0005_sop_definitions
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_notification_edits"
down_revision: str | None = "0005_sop_definitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("edits_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("edits_id")
