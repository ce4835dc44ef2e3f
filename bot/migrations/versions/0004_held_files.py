"""held files apart from the pending question

Files the bot holds while it asks where they go lived in the person's one
PendingInput row (kind "held"), so any new question dropped them. They get a
table of their own, one row per held group; rows held the old way move over.

Revision ID: 0004_held_files
Revises: 0003
Create Date: 2026-11-25 09:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0004_held_files"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    held = op.create_table(
        "heldfiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("batch", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("heldfiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_heldfiles_member_id"), ["member_id"], unique=False)

    # Files held the old way: each group becomes a row; the question row goes.
    pending = sa.table(
        "pendinginput",
        sa.column("member_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("created_at", bot.db.UTCDateTime(timezone=True)),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(pending.c.member_id, pending.c.payload, pending.c.created_at).where(
            pending.c.kind == "held"
        )
    ).all()
    for member_id, payload, created_at in rows:
        payload = payload or {}
        groups = payload.get("groups")
        if groups is None and payload.get("files"):
            groups = [{"batch": payload.get("batch"), "files": payload["files"]}]
        for group in groups or []:
            conn.execute(
                held.insert().values(
                    member_id=member_id,
                    batch=group.get("batch"),
                    files=list(group.get("files") or []),
                    created_at=created_at or datetime.now(UTC),
                )
            )
    conn.execute(pending.delete().where(pending.c.kind == "held"))


def downgrade() -> None:
    with op.batch_alter_table("heldfiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_heldfiles_member_id"))
    op.drop_table("heldfiles")
