"""Backups an office can restore: taken while the bot handles updates in
the middle of a run, restored into a fresh folder, and the bot started
there goes on where the run was, with the audit chain and every file whole."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.backup import BackupError, backup, restore, sha256_of
from bot.botapi import Person as FakeUser
from bot.cli import main
from bot.models import Run, RunState, StoredFile
from bot.settings import Settings
from tests.conftest import PG_URL
from tests.fakes.world import World, running_bot
from tests.support import UNIT_FILES, XLSX, workbook

UNITS = list(UNIT_FILES)


def with_buttons(person: FakeUser, needle: str) -> dict[str, Any]:
    found = [m for m in person.find(needle) if m.get("reply_markup")]
    assert found, f"{person.first_name}: no message with buttons and {needle!r}"
    return found[-1]


PEOPLE = [
    ("kepala", 1001, "Kepala", "kepala_badan", None),
    ("sekretaris", 1002, "Sekretaris", "sekretaris", None),
    ("rina", 1003, "Rina", "perencana", None),
    *((f"unit{i}", 2000 + i, f"Staf {i}", "anggota_tim", UNITS[i - 1]) for i in (1, 2, 3)),
]


async def files_of(world: World) -> list[StoredFile]:
    async with world.services.db.session() as s:
        return list((await s.exec(select(StoredFile))).all())


async def pg_database(suffix: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database on TEST_DATABASE_URL's server."""
    import asyncpg

    url = make_url(PG_URL)
    name = f"{url.database}_backup_{suffix}_{os.getpid()}"
    server = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_missing() -> str | None:
    if not PG_URL:
        return "TEST_DATABASE_URL is not set: no PostgreSQL server to back up"
    missing = [tool for tool in ("pg_dump", "psql") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt install postgresql-client)"
    return None


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_a_backup_taken_mid_run_restores_and_the_run_goes_on(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "postgresql" and (why := pg_missing()):
        pytest.skip(why)
    source_gen = target_gen = None
    if engine == "postgresql":
        source_gen, target_gen = pg_database("src"), pg_database("dst")
        source_url = await anext(source_gen)
        target_url = await anext(target_gen)
    else:
        source_url = f"sqlite+aiosqlite:///{tmp_path / 'a' / 'bot.db'}"
        target_url = f"sqlite+aiosqlite:///{tmp_path / 'b' / 'data' / 'sopbot.db'}"
    folder = tmp_path / "cadangan"
    try:
        (tmp_path / "a").mkdir()
        async with running_bot(tmp_path / "a", database_url=source_url) as world:
            p = {k: await world.join(k, i, n, role, unit) for k, i, n, role, unit in PEOPLE}
            await world.to_collection()
            await p["unit1"].send_document(workbook(UNITS[0], 1), "kinerja.xlsx", XLSX)
            await world.idle()
            await p["rina"].press(with_buttons(p["rina"], "Berkas masuk dari"), "Terima")
            await world.idle()
            sealed = await world.services.seals.seal()
            assert sealed is not None
            before = {f.sha256 for f in await files_of(world)}
            # Updates arrive while the snapshot is taken: the bot is half way
            # through a unit's file (its download held) when the backup runs
            # on its thread, and a command waits behind it.
            download = world.server.hold("getFile", deliver=True)
            await p["unit2"].send_document(workbook(UNITS[1], 1), "kinerja-2.xlsx", XLSX)
            await p["kepala"].send_command("/status")
            await download.arrived.wait()
            manifest = await asyncio.to_thread(backup, world.services.settings, folder)
            download.release.set()
            await world.idle()
            assert p["unit2"].latest("Tanda terima")  # the live bot finished it
            clock_at = world.clock.now()
        assert manifest.database == engine
        written = json.loads((folder / "manifest.json").read_text())["files"]
        assert {"audit-witness.jsonl", "audit.key"} <= written.keys()
        assert (folder / "audit.key").stat().st_mode & 0o777 == 0o600

        # Restore into a fresh folder, through the command an admin types.
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "b" / "data"))
        monkeypatch.setenv("DATABASE_URL", target_url)
        monkeypatch.delenv("AUDIT_KEY", raising=False)
        assert await asyncio.to_thread(main, ["restore", str(folder)]) == 0
        restored = Settings(_env_file=None, data_dir=tmp_path / "b" / "data")
        for relative, entry in written.items():
            if relative.startswith("files/"):
                path = restored.files_dir / relative.removeprefix("files/")
                assert sha256_of(path) == entry["sha256"], relative
        assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
        # A second restore over the live folder is refused.
        assert await asyncio.to_thread(main, ["restore", str(folder)]) == 1

        async with running_bot(tmp_path / "b", database_url=target_url, start=clock_at) as again:
            stored = await files_of(again)
            assert {f.sha256 for f in stored} == before  # as it was when copied
            for f in stored:  # every file the database names, whole
                path = again.services.storage.path(f.storage_path)
                assert sha256_of(path) == f.sha256, f.original_name
            async with again.services.db.session() as s:
                [run] = (await s.exec(select(Run))).all()
            assert run.state == RunState.open
            again.server.number_updates_after(10_000)
            q = {k: again.user(k, i, n) for k, i, n, _, _ in PEOPLE}
            # The run goes on: the third unit delivers, the planner accepts.
            await q["unit3"].send_document(workbook(UNITS[2], 1), "kinerja-3.xlsx", XLSX)
            await again.idle()
            assert q["unit3"].latest("Tanda terima")
            review = with_buttons(q["rina"], f"Berkas masuk dari {UNITS[2]}")
            await q["rina"].press(review, "Terima")
            await again.idle()
            assert q["rina"].latest("diterima")
            assert (await again.services.seals.check()).status == "intact"
            # This fake server is new: it knows neither the chats of people
            # who have not written yet (their command menus) nor the messages
            # sent before the backup (edits of them come as short notices).
            # Telegram keeps both for a bot moved to another machine. Unit 2's
            # file was half way in when the snapshot was taken: its update
            # was stored and not done, so the restored bot handles it again
            # (nothing lost), and asks for a file this new server never had.
            refused = {r.method for r in again.server.errors()}
            assert refused <= {"setMyCommands", "editMessageText", "editMessageCaption", "getFile"}
    finally:
        for gen in (source_gen, target_gen):
            if gen is not None:
                await gen.aclose()


def test_restore_checks_the_manifest_and_refuses_a_live_folder(tmp_path: Path) -> None:
    import sqlite3

    live = Settings(_env_file=None, data_dir=tmp_path / "live")
    live.files_dir.mkdir(parents=True)
    (live.files_dir / "run-1").mkdir()
    (live.files_dir / "run-1" / "a.xlsx").write_bytes(b"isi berkas")
    (live.files_dir / ".incoming").mkdir()
    (live.files_dir / ".incoming" / "x.part").write_bytes(b"separuh")
    with sqlite3.connect(live.data_dir / "sopbot.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    folder = tmp_path / "cadangan"
    manifest = backup(live, folder)
    assert set(manifest.files) == {"sopbot.db", "files/run-1/a.xlsx"}  # no download in progress
    with pytest.raises(BackupError, match="tidak kosong"):
        backup(live, folder)  # never into a used folder
    with pytest.raises(BackupError, match="DATA_DIR .* tidak kosong"):
        restore(live, folder)
    fresh = Settings(_env_file=None, data_dir=tmp_path / "baru")
    (folder / "files" / "run-1" / "a.xlsx").write_bytes(b"isi lain!!")
    with pytest.raises(BackupError, match="SHA-256 tidak cocok\\): files/run-1/a.xlsx"):
        restore(fresh, folder)
    assert not fresh.data_dir.exists()  # nothing was touched
    (folder / "files" / "run-1" / "a.xlsx").write_bytes(b"isi berkas")
    (folder / "manifest.json").rename(folder / "manifest.lama")
    with pytest.raises(BackupError, match="bukan cadangan yang lengkap"):
        restore(fresh, folder)
    (folder / "manifest.lama").rename(folder / "manifest.json")
    restore(fresh, folder)
    assert (fresh.files_dir / "run-1" / "a.xlsx").read_bytes() == b"isi berkas"
    assert not any(p.name.startswith(".baru.restoring") for p in tmp_path.iterdir())
