"""outbox: office-hours-only rows and the dropped state

Revision ID: 0002_outbox_office_hours
Revises: 0001
Create Date: 2026-11-25 09:20:00

Reminders, escalations and digests are marked so that the sender waits for
office hours; a reminder that is no longer owed is marked dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_outbox_office_hours"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A native enum; SQLite keeps the state as text (VARCHAR(7) fits it).
        op.execute("ALTER TYPE outboxstate ADD VALUE IF NOT EXISTS 'dropped'")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("office_hours_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("office_hours_only")
    # PostgreSQL cannot drop an enum value; 'dropped' rows become 'failed'.
    op.execute("UPDATE notification SET state = 'failed' WHERE state = 'dropped'")
