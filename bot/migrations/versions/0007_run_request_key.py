"""a run records the request that started it, so a redelivered /mulai finds it

Revision ID: 0007_run_request_key
Revises: 0006_notification_edits
Create Date: 2026-11-25 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_run_request_key"
down_revision: str | None = "0006_notification_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(
            sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.create_index("ix_run_request_key", ["request_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_index("ix_run_request_key")
        batch.drop_column("request_key")
