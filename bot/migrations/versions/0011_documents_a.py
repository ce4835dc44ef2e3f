"""a stored file may be made by the bot (a draft): no uploader

Revision ID: 0011_documents_a
Revises: 0010_audit_seal
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_documents_a"
down_revision: str | None = "0010_audit_seal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# On SQLite the table is rebuilt (batch mode); bot.migrate turns foreign keys
# off around migrations, as dropping a table others refer to needs.


def upgrade() -> None:
    with op.batch_alter_table("storedfile", schema=None) as batch_op:
        batch_op.alter_column("uploader_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # The bot's drafts have no uploader; they go before the column is required again.
    op.execute(
        "DELETE FROM notification WHERE file_id IN "
        "(SELECT id FROM storedfile WHERE uploader_id IS NULL)"
    )
    op.execute("DELETE FROM storedfile WHERE uploader_id IS NULL")
    with op.batch_alter_table("storedfile", schema=None) as batch_op:
        batch_op.alter_column("uploader_id", existing_type=sa.Integer(), nullable=False)
