"""outbox: office-hours-only rows and the dropped state

Revision ID: 0002_outbox_office_hours
Revises: 0001
Create Date: 2026-11-25 09:20:00

Reminders, escalations and digests are marked so that the sender waits for
office hours; a reminder that is no longer owed is marked dropped. Their
keys now carry the step's due time: existing keys are rewritten to the new
form, so that an upgrade in the middle of a day does not send a reminder or
escalation a second time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

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
    _rewrite_rows()


def _new_key(key: str, due: dict[int, int]) -> str | None:
    """remind:RS:A:M:1:SEQ -> remind:RS:DUE:A:M:SEQ and
    escalate:RS:BOSS:2:0 -> escalate:RS:DUE:BOSS:1 (level 1)."""
    parts = key.split(":")
    if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) not in due:
        return None
    stamp = due[int(parts[1])]
    if parts[0] == "remind" and len(parts) == 6 and parts[4] == "1":
        _, rs, a, m, _, seq = parts
        return f"remind:{rs}:{stamp}:{a}:{m}:{seq}"
    if parts[0] == "escalate" and len(parts) == 5 and parts[3:] == ["2", "0"]:
        _, rs, boss, _, _ = parts
        return f"escalate:{rs}:{stamp}:{boss}:1"
    return None


def _rewrite_rows() -> None:
    bind = op.get_bind()
    notification = sa.table(
        "notification",
        sa.column("id", sa.Integer()),
        sa.column("key", sa.String()),
        sa.column("template", sa.String()),
        sa.column("office_hours_only", sa.Boolean()),
    )
    runstep = sa.table(
        "runstep",
        sa.column("id", sa.Integer()),
        sa.column("due_at", bot.db.UTCDateTime(timezone=True)),
    )
    bind.execute(
        notification.update()
        .where(notification.c.template.in_(["reminder", "escalation", "digest"]))
        .values(office_hours_only=True)
    )
    due = {
        row.id: int(row.due_at.timestamp())
        for row in bind.execute(sa.select(runstep.c.id, runstep.c.due_at))
        if row.due_at is not None
    }
    rows = bind.execute(
        sa.select(notification.c.id, notification.c.key).where(
            sa.or_(notification.c.key.like("remind:%"), notification.c.key.like("escalate:%"))
        )
    ).all()
    for row in rows:
        new = _new_key(row.key, due)
        if new is not None:
            bind.execute(notification.update().where(notification.c.id == row.id).values(key=new))


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("office_hours_only")
    # PostgreSQL cannot drop an enum value; 'dropped' rows become 'failed'.
    op.execute("UPDATE notification SET state = 'failed' WHERE state = 'dropped'")
