"""who stopped a run, in a column (run.cancelled_by), as who closed a unit
is: a message caught up after the run was stopped names them; runs stopped
before take it from their run_cancelled event

Revision ID: 0015_run_cancelled_by
Revises: 0014_sweep_indexes
Create Date: 2026-11-30 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_run_cancelled_by"
down_revision: str | None = "0014_sweep_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE: batch mode would recreate "run", which most tables
    # point at.
    if op.get_bind().dialect.name == "sqlite":
        # Alembic adds no constraint by ALTER on SQLite; SQLite takes one
        # inline on a new column that defaults to NULL.
        op.execute("ALTER TABLE run ADD COLUMN cancelled_by INTEGER REFERENCES member (id)")
    else:
        op.add_column(
            "run",
            sa.Column("cancelled_by", sa.Integer(), sa.ForeignKey("member.id"), nullable=True),
        )
    # The event log is the record: each stopped run's last run_cancelled event.
    op.execute(
        "UPDATE run SET cancelled_by = ("
        " SELECT event.actor_id FROM event"
        " WHERE event.run_id = run.id AND event.kind = 'run_cancelled'"
        " ORDER BY event.seq DESC LIMIT 1)"
        " WHERE run.state = 'cancelled'"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE run DROP COLUMN cancelled_by")  # SQLite 3.35+
    else:
        op.drop_column("run", "cancelled_by")
