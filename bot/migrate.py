"""Schema migrations (Alembic) driven from code, and the start-up check
that refuses to run on a database that is behind."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db.url)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def pending(db: Database) -> tuple[set[str], set[str]]:
    """(current revisions, head revisions); equal when up to date."""
    heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())

    def current(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    async with db.engine.connect() as conn:
        return await conn.run_sync(current), heads


class DatabaseBehind(RuntimeError):
    """The schema is older than the code; `sopbot db upgrade` fixes it."""


async def require_current(db: Database) -> None:
    now, heads = await pending(db)
    if now != heads:
        raise DatabaseBehind(
            f"Database belum diperbarui (revisi {', '.join(sorted(now)) or 'kosong'}, "
            f"seharusnya {', '.join(sorted(heads))}). Jalankan: sopbot db upgrade"
        )
