"""the deadline sweep reads a range of an index: runstep.check_at (when the
sweep next has something to do for a step) with an index on (state,
check_at); indexes for a member's owed assignments and the outbox's poll

Revision ID: 0014_sweep_indexes
Revises: 0013_inbox
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_sweep_indexes"
down_revision: str | None = "0013_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): batch mode would recreate runstep.
    op.add_column("runstep", sa.Column("check_at", sa.DateTime(timezone=True), nullable=True))
    # Open steps are looked at from their due time on; the first sweep sets
    # the next moment for each (an early look costs one sweep, never a reminder).
    op.execute("UPDATE runstep SET check_at = due_at WHERE state = 'open'")
    op.create_index("ix_runstep_state_check_at", "runstep", ["state", "check_at"])
    op.create_index("ix_assignment_state_role", "assignment", ["state", "role"])
    op.create_index("ix_notification_state_not_before", "notification", ["state", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_notification_state_not_before", table_name="notification")
    op.drop_index("ix_assignment_state_role", table_name="assignment")
    op.drop_index("ix_runstep_state_check_at", table_name="runstep")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE runstep DROP COLUMN check_at")  # SQLite 3.35+
    else:
        op.drop_column("runstep", "check_at")
