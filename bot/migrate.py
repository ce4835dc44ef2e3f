"""Schema migrations (Alembic) driven from code, and the start-up check
that refuses to run on a database that is behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db import Database, is_sqlite

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message says which and why."""


@contextmanager
def _reachable(db: Database) -> Iterator[None]:
    """Turn a failed connection into one line naming the database (no password)."""
    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        if isinstance(exc, SQLAlchemyError) and not isinstance(exc, DBAPIError):
            raise
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0]
        where = make_url(db.url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"Database tidak dapat dibuka ({where}): {reason}. "
            "Periksa DATABASE_URL di .env dan bahwa server databasenya berjalan."
        ) from exc


async def _foreign_keys(conn: AsyncConnection, on: bool) -> None:
    """SQLite's foreign keys on or off for this connection. A migration
    that changes a column rebuilds its table (batch mode), and dropping a
    table other tables refer to fails while they are enforced; the switch
    only works outside a transaction, so it goes to the driver directly."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


async def _migrate(db: Database, step: Callable[[Config, str], None], revision: str) -> None:
    cfg = alembic_config(db.url)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        step(cfg, revision)

    sqlite = is_sqlite(db.url)
    with _reachable(db):
        async with db.engine.connect() as conn:
            if sqlite:
                await _foreign_keys(conn, False)
            try:
                async with conn.begin():
                    await conn.run_sync(run)
                    if sqlite:  # what the switch let through must still hold
                        broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                        if broken:
                            raise RuntimeError(f"foreign keys broken by the migration: {broken}")
            finally:
                if sqlite:
                    await _foreign_keys(conn, True)


async def upgrade(db: Database, revision: str = "head") -> None:
    await _migrate(db, command.upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    """Back to an older revision (tests of data migrations use it)."""
    await _migrate(db, command.downgrade, revision)


async def pending(db: Database) -> tuple[set[str], set[str]]:
    """(current revisions, head revisions); equal when up to date."""
    heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())

    def current(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    with _reachable(db):
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
