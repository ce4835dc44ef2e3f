"""a question remembers the message that asked it, so the answer is written there

Revision ID: 0009_pending_prompt
Revises: 0008_assignment_columns
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_pending_prompt"
down_revision: str | None = "0008_assignment_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pendinginput", sa.Column("prompt_message_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE pendinginput DROP COLUMN prompt_message_id")  # SQLite 3.35+
    else:
        op.drop_column("pendinginput", "prompt_message_id")
