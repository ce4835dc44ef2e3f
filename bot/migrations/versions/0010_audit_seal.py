"""outbox: a silent row (disable_notification), for the audit seal's chat line

Revision ID: 0010_audit_seal
Revises: 0009_pending_prompt
Create Date: 2026-11-30 17:00:00

The admins get each seal of the event chain as a short line in chat, kept
there as a witness the database cannot reach; it must not ring their phones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_audit_seal"
down_revision: str | None = "0009_pending_prompt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("silent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("silent")
