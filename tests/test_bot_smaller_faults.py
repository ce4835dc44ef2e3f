"""Smaller faults found walking the seed SOP (issue 8): a meeting place too
long, the round-2 document's version, and edits that change nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from bot.botapi import Person as FakeUser
from bot.models import StoredFile
from bot.views import IncomingFile
from tests.fakes.world import World, running_bot
from tests.support import DATA, UNIT_FILES, XLSX
from tests.test_bot_settled_tasks import finish_step_2
from tests.test_bot_walkthrough import enrol_everyone, with_buttons

# A correction note long enough that the round-2 task's caption overflows:
# the settled line no longer fits under it, so only its buttons can go.
LONG_NOTE = "Perbaiki capaian dan sumber datanya. " * 25


async def to_step_8(world: World, p: dict[str, FakeUser]) -> tuple[dict[str, int], int]:
    """Steps 2-7 through the engine (tested in chat elsewhere): every unit
    delivers and is accepted. Returns the member ids and step 8's id."""
    await world.to_collection()
    e = world.services.engine
    ids = {k: await world.member_id(person) for k, person in p.items()}
    [collect] = await e.queries.tasks(ids["unit1"])
    for i, name in enumerate(UNIT_FILES.values(), start=1):
        receipt = await e.collection.upload(
            ids[f"unit{i}"],
            collect.run_step_id,
            IncomingFile((DATA / name).read_bytes(), name, XLSX),
        )
        await e.collection.review(ids["rina"], receipt.file.id or 0, accept=True)
    [step8] = [t for t in await e.queries.tasks(ids["rina"]) if t.number == 8]
    return ids, step8.run_step_id


async def to_round_two(world: World, p: dict[str, FakeUser]) -> dict[str, int]:
    """Round 1 of steps 8-11 through the engine, the head returning the
    document with a long note; step 8 is open again (putaran ke-2)."""
    e = world.services.engine
    ids, step8 = await to_step_8(world, p)
    await e.collection.upload(ids["rina"], step8, IncomingFile(b"PK v1", "dokumen.xlsx", XLSX))
    await e.steps.complete(ids["rina"], step8)
    [step9] = [t for t in await e.queries.tasks(ids["sekretaris"]) if t.number == 9]
    await e.steps.complete(ids["sekretaris"], step9.run_step_id)
    [step10] = await e.queries.tasks(ids["kepala"])
    await e.steps.decide(ids["kepala"], step10.run_step_id, "koreksi", note=LONG_NOTE)
    [step11] = [t for t in await e.queries.tasks(ids["sekretaris"]) if t.number == 11]
    await e.steps.complete(ids["sekretaris"], step11.run_step_id)
    await world.idle()
    return ids


async def test_a_meeting_place_too_long_is_answered_as_too_long(tmp_path: Path) -> None:
    """Over 200 characters the place is not 'missing': the sekretaris is
    told it is too long, and the limit; nothing is scheduled."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await finish_step_2(world, p)
        await p["dodi"].press(with_buttons(p["dodi"], "Langkah 3"), "Kirim ke semua unit")
        await world.idle()
        await p["sekretaris"].press(with_buttons(p["sekretaris"], "Langkah 4"), "Atur rapat")
        await world.idle()
        await p["sekretaris"].send_text("03-11-2026 09:00 Ruang Rapat " + "Badan " * 40)
        await world.idle()
        answer = p["sekretaris"].last["text"]
        assert answer == "✏️ Tempat rapat terlalu panjang (maksimal 200 karakter).", answer
        assert not p["kepala"].find("Undangan rapat")
        # Still asked: the same question takes a shorter place.
        await p["sekretaris"].send_text("03-11-2026 09:00 Ruang Rapat Badan")
        await world.idle()
        assert "Ruang Rapat Badan" in p["sekretaris"].last["text"]
        assert world.server.errors() == []


async def test_the_round_two_document_is_version_two(tmp_path: Path) -> None:
    """Versions count per step across rounds (the same uploader slot): the
    document sent again after the head's return is 'versi 2, menggantikan
    versi 1', not a second 'versi 1'."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await to_round_two(world, p)
        task8b = with_buttons(p["rina"], "Langkah 8 (putaran ke-2)")
        await p["rina"].send_document(b"PK v2", "dokumen-v2.xlsx", XLSX, reply_to=task8b)
        await world.idle()
        receipt = p["rina"].latest("Tanda terima")["text"]
        assert "Versi: 2 (menggantikan versi 1)" in receipt, receipt
        # A further file in the same round goes on from there.
        await p["rina"].send_document(b"PK v3", "dokumen-v3.xlsx", XLSX, reply_to=task8b)
        await world.idle()
        assert "Versi: 3 (menggantikan versi 2)" in p["rina"].latest("Tanda terima")["text"]
        async with world.services.db.session() as s:
            files = (
                await s.exec(select(StoredFile).where(StoredFile.original_name.startswith("dok")))  # type: ignore[attr-defined]
            ).all()
        assert sorted((f.original_name, f.version) for f in files) == [
            ("dokumen-v2.xlsx", 2),
            ("dokumen-v3.xlsx", 3),
            ("dokumen.xlsx", 1),
        ]
        assert world.server.errors() == []


async def test_no_edit_that_changes_nothing_when_a_task_is_finished(tmp_path: Path) -> None:
    """Step 9 of round 2: the task is the document, its caption too long for
    the settled line. The press and the outbox both took its buttons away;
    the second removal was refused ("message is not modified"). Now the
    outbox's edit is the one change, and the buttons are gone all the same."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        ids = await to_round_two(world, p)
        e = world.services.engine
        [step8] = [t for t in await e.queries.tasks(ids["rina"]) if t.number == 8]
        await e.collection.upload(
            ids["rina"], step8.run_step_id, IncomingFile(b"PK v2", "dokumen-v2.xlsx", XLSX)
        )
        await e.steps.complete(ids["rina"], step8.run_step_id)
        await world.idle()
        task9 = with_buttons(p["sekretaris"], "Langkah 9 (putaran ke-2)")
        await p["sekretaris"].press(task9, "Selesai")
        await world.idle()
        assert world.server.errors() == [], [(r.method, r.error) for r in world.server.errors()]
        assert world.server.shown_markups()[(p["sekretaris"].id, task9["message_id"])] is None
        assert p["kepala"].find("Langkah 10 (putaran ke-2)")


async def test_a_press_after_the_outbox_edit_changes_nothing_more(tmp_path: Path) -> None:
    """The press queues the outbox's edit of the pressed message (the settled
    line, its buttons gone). That edit waits until the press is answered,
    even when the repeating tick runs meanwhile, and the press leaves the
    keyboard to it instead of removing it a second time ("not modified")."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        ids, step8 = await to_step_8(world, p)
        e = world.services.engine
        await e.collection.upload(ids["rina"], step8, IncomingFile(b"PK v1", "dokumen.xlsx", XLSX))
        await e.steps.complete(ids["rina"], step8)
        await world.idle()
        sekretaris = p["sekretaris"]
        task9 = with_buttons(sekretaris, "Langkah 9")
        hold = world.server.hold("answerCallbackQuery", deliver=True)
        before = len(world.server.requests)
        await sekretaris.press(task9, "Selesai")
        async with asyncio.timeout(10):
            await hold.arrived.wait()
        await world.sender.flush(world.app.bot)  # the tick, while the press is answered
        edits = [
            r
            for r in world.server.requests[before:]
            if r.method.startswith("editMessage")
            and str(r.params.get("chat_id")) == str(sekretaris.id)
        ]
        assert edits == []
        hold.release.set()
        await world.idle()
        assert world.server.errors() == [], [(r.method, r.error) for r in world.server.errors()]
        assert world.server.shown_markups()[(sekretaris.id, task9["message_id"])] is None
        assert "Diselesaikan oleh Sekretaris" in task9["caption"]
