"""SOP definitions kept with the runs

A run stored only its SOP key and a fingerprint; the engine read the current
YAML file, so an edited file broke or silently changed open runs. Each
distinct definition a run starts with is now stored, keyed by fingerprint.

Rows for runs that existed before this table are written lazily, not here:
a migration cannot know which definition files the bot is configured with.
At start-up (Services.start) and on a run's first write transaction, the
definition is stored if the current file still has the run's fingerprint
(bot/definitions.py).

Revision ID: 0005_sop_definitions
Revises: 0004_held_files
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0005_sop_definitions"
down_revision: str | None = "0004_held_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sopdefinition",
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sop_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    with op.batch_alter_table("sopdefinition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sopdefinition_sop_key"), ["sop_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sopdefinition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sopdefinition_sop_key"))
    op.drop_table("sopdefinition")
