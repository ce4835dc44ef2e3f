"""processed updates record when their handling finished

Revision ID: 0003
Revises: 0002_outbox_office_hours
Create Date: 2026-11-25 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0003"
down_revision: str | None = "0002_outbox_office_hours"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processedupdate") as batch:
        batch.add_column(sa.Column("finished_at", bot.db.UTCDateTime(timezone=True), nullable=True))
    # Ids recorded before this column existed were recorded once handled.
    op.execute("UPDATE processedupdate SET finished_at = at WHERE finished_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("processedupdate") as batch:
        batch.drop_column("finished_at")
