"""an assignment knows who delegated it and when, and who closed it, when and why

Until now these were found by scanning the event log; the log stays the
record, the columns are the state. Existing rows are filled from the events.

Revision ID: 0008_assignment_columns
Revises: 0007_run_request_key
Create Date: 2026-11-30 14:00:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0008_assignment_columns"
down_revision: str | None = "0007_run_request_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("delegated_at", "closed_by", "closed_at", "close_reason")


def _details(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def upgrade() -> None:
    # Plain ALTER TABLE: batch mode would recreate "assignment", which the
    # outbox and stored files point at.
    op.add_column(
        "assignment", sa.Column("delegated_at", bot.db.UTCDateTime(timezone=True), nullable=True)
    )
    if op.get_bind().dialect.name == "sqlite":
        # Alembic adds no constraint by ALTER on SQLite; SQLite takes one
        # inline on a new column that defaults to NULL.
        op.execute("ALTER TABLE assignment ADD COLUMN closed_by INTEGER REFERENCES member (id)")
    else:
        op.add_column(
            "assignment",
            sa.Column("closed_by", sa.Integer(), sa.ForeignKey("member.id"), nullable=True),
        )
    op.add_column(
        "assignment", sa.Column("closed_at", bot.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "assignment",
        sa.Column("close_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    bind = op.get_bind()
    event = sa.table(
        "event",
        sa.column("seq", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("at", bot.db.UTCDateTime(timezone=True)),
        sa.column("actor_id", sa.Integer),
        sa.column("details", sa.JSON),
    )
    assignment = sa.table(
        "assignment",
        sa.column("id", sa.Integer),
        sa.column("note", sa.String),
        sa.column("delegated_at", bot.db.UTCDateTime(timezone=True)),
        sa.column("closed_by", sa.Integer),
        sa.column("closed_at", bot.db.UTCDateTime(timezone=True)),
        sa.column("close_reason", sa.String),
    )
    rows = bind.execute(
        sa.select(event.c.kind, event.c.at, event.c.actor_id, event.c.details)
        .where(event.c.kind.in_(["reassigned", "unit_closed"]))
        .order_by(event.c.seq)
    ).all()
    for kind, at, actor_id, raw in rows:  # later events win: the latest state
        details = _details(raw)
        assignment_id = details.get("assignment_id")
        if not isinstance(assignment_id, int):
            continue
        if kind == "reassigned":
            values: dict[str, Any] = {"delegated_at": _aware(at)}
        else:
            values = {
                "closed_by": actor_id,
                "closed_at": _aware(at),
                "close_reason": details.get("reason"),
            }
        bind.execute(assignment.update().where(assignment.c.id == assignment_id).values(**values))
    # The close reason was kept in `note`; `note` is now the return note only.
    bind.execute(
        assignment.update().where(assignment.c.close_reason.is_not(None)).values(note=None)
    )


def downgrade() -> None:
    bind = op.get_bind()
    assignment = sa.table(
        "assignment",
        sa.column("note", sa.String),
        sa.column("close_reason", sa.String),
    )
    bind.execute(
        assignment.update()
        .where(assignment.c.close_reason.is_not(None))
        .values(note=assignment.c.close_reason)
    )
    for name in reversed(COLUMNS):
        if bind.dialect.name == "sqlite":
            op.execute(f"ALTER TABLE assignment DROP COLUMN {name}")  # SQLite 3.35+
        else:
            op.drop_column("assignment", name)
