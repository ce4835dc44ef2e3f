"""A redelivered update (Telegram does so after a restart, a webhook call is
retried) is handled again when its first handling failed, and recorded as a
duplicate, changing nothing, once it is done (bot/inbox.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from bot.models import Event, InboxUpdate, StoredFile
from tests.fakes.world import World, running_bot
from tests.support import DATA, UNIT_FILES, XLSX
from tests.test_bot_bad_input import to_collection


async def events(world: World) -> int:
    async with world.services.db.session() as s:
        return (await s.exec(select(func.count()).select_from(Event))).one()


async def test_a_crashed_update_is_handled_on_redelivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        unit1 = p["unit1"]
        collection = world.services.engine.collection
        real_upload = collection.upload
        calls = 0

        async def crash_once(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("the process fell over here")
            return await real_upload(*args, **kwargs)

        monkeypatch.setattr(collection, "upload", crash_once)
        name = list(UNIT_FILES.values())[0]
        update_id = await unit1.send_document(DATA / name, name, XLSX)
        await world.idle()
        assert "kesalahan" in unit1.messages[-1]["text"]
        assert not unit1.find("Tanda terima")
        row = await world.services.inbox.get(update_id)
        assert row is not None and row.done_at is None and row.failed_at is not None

        await world.server.redeliver(update_id)  # after a restart
        await world.idle()
        assert len(unit1.find("Tanda terima")) == 1
        async with world.services.db.session() as s:
            files = (
                await s.exec(
                    select(func.count())
                    .select_from(StoredFile)
                    .where(StoredFile.original_name == name)
                )
            ).one()
            row = await s.get(InboxUpdate, update_id)
            assert row is not None and row.done_at is not None and row.duplicates == 1
        assert files == 1

        # Finished now: a further redelivery changes nothing.
        before = await events(world)
        await world.server.redeliver(update_id)
        await world.idle()
        assert calls == 2
        assert len(unit1.find("Tanda terima")) == 1
        assert await events(world) == before
        row = await world.services.inbox.get(update_id)
        assert row is not None and row.duplicates == 2 and row.payload is None
        assert world.server.errors() == []


async def test_a_mulai_redelivered_after_a_crash_starts_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/mulai committed its run, then its handler fell over before answering:
    the update was marked done in the run's own commit, so the redelivery is
    recorded as a duplicate and starts no second run."""
    from bot.models import Run

    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("rina", 1003, "Rina", "perencana")
        queries = world.services.engine.queries
        real_status = queries.run_status
        calls = 0

        async def crash_after_commit(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("the process fell over after the commit")
            return await real_status(*args, **kwargs)

        monkeypatch.setattr(queries, "run_status", crash_after_commit)
        update_id = await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        assert "kesalahan" in kepala.messages[-1]["text"]
        row = await world.services.inbox.get(update_id)
        assert row is not None and row.done_at is not None and row.failed_at is None
        await world.server.redeliver(update_id)
        await world.idle()
        async with world.services.db.session() as s:
            runs = (await s.exec(select(Run))).all()
            started = (await s.exec(select(Event).where(Event.kind == "run_started"))).all()
        assert len(runs) == 1 and len(started) == 1
        assert runs[0].request_key == f"update:{update_id}"
        assert calls == 1  # the redelivery reached no handler
        row = await world.services.inbox.get(update_id)
        assert row is not None and row.duplicates == 1
        tasks = [m for m in world.people["rina"].find("Tugas baru") if "Langkah 2" in m["text"]]
        assert len(tasks) == 1


async def test_a_press_delivered_twice_is_done_once_and_recorded_as_a_duplicate(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("rina", 1003, "Rina", "perencana")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        await kepala.send_command("/status")
        await world.idle()
        query_id = await kepala.press(kepala.latest("TW IV 2026"), "Tabel")
        await world.idle()
        [update_id] = [
            u["update_id"]
            for call in world.server.calls("getUpdates")
            for u in call.get("result", [])
            if u.get("callback_query", {}).get("id") == query_id
        ]
        before = (len(kepala.messages), await events(world))
        await world.server.redeliver(update_id)
        await world.idle()
        assert (len(kepala.messages), await events(world)) == before
        assert len(world.server.calls("answerCallbackQuery")) == 1
        assert kepala.answer(query_id) is not None
        row = await world.services.inbox.get(update_id)
        assert row is not None and row.done_at is not None and row.duplicates == 1
        assert world.server.errors() == []
