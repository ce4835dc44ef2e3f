"""received updates are stored before they are confirmed: the inbox replaces
the table of processed update ids

Revision ID: 0013_inbox
Revises: 0012_documents_b
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0013_inbox"
down_revision: str | None = "0012_documents_b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inboxupdate",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    # The ids already seen stay recognised. One seen but never finished has
    # no stored update to begin again: it counts as failed, so a redelivery
    # of it is still handled (as before) and a start leaves it be.
    op.execute(
        "INSERT INTO inboxupdate "
        "(update_id, payload, received_at, done_at, failed_at, duplicates, restarts) "
        "SELECT update_id, NULL, at, finished_at, "
        "CASE WHEN finished_at IS NULL THEN at END, 0, 0 FROM processedupdate"
    )
    op.drop_table("processedupdate")


def downgrade() -> None:
    op.create_table(
        "processedupdate",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.execute(
        "INSERT INTO processedupdate (update_id, at, finished_at) "
        "SELECT update_id, received_at, done_at FROM inboxupdate"
    )
    op.drop_table("inboxupdate")
