"""a run records the request that started it, so a redelivered /mulai finds it

Revision ID: 0007_run_request_key
Revises: 0006_notification_edits
Create Date: 2026-11-25 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007_run_request_key"
down_revision: str | None = "0006_notification_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE: batch mode would recreate "run", which the foreign
    # keys of most other tables point at.
    op.add_column(
        "run", sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )
    op.create_index("ix_run_request_key", "run", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_run_request_key", table_name="run")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE run DROP COLUMN request_key")  # SQLite 3.35+
    else:
        op.drop_column("run", "request_key")
