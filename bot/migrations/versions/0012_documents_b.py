"""cover letter numbers: a counter per office and year, the numbers given, the run's number

Revision ID: 0012_documents_b
Revises: 0011_documents_a
Create Date: 2026-11-30 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0012_documents_b"
down_revision: str | None = "0011_documents_a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lettercounter",
        sa.Column("office", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("office", "year"),
    )
    op.create_table(
        "letternumber",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("run_step_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum("drawn", "used", "replaced", name="letternumberstate"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"]),
        sa.ForeignKeyConstraint(["run_step_id"], ["runstep.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office", "year", "number"),
        sa.UniqueConstraint("run_step_id"),
    )
    op.create_index(op.f("ix_letternumber_run_id"), "letternumber", ["run_id"], unique=False)
    op.add_column(
        "run", sa.Column("letter_number", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE run DROP COLUMN letter_number")  # SQLite 3.35+
    else:
        op.drop_column("run", "letter_number")
    op.drop_index(op.f("ix_letternumber_run_id"), table_name="letternumber")
    op.drop_table("letternumber")
    op.drop_table("lettercounter")
    sa.Enum(name="letternumberstate").drop(op.get_bind(), checkfirst=True)
