"""Bad input in chat: each gets a clear Indonesian reply and changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import SQLModel, func, select

from bot.botapi import Person as FakeUser
from bot.models import (
    Assignment,
    Attendance,
    Event,
    Meeting,
    Notification,
    PendingInput,
    Run,
    RunStep,
    StoredFile,
)
from bot.texts import plain
from tests.fakes.world import World, running_bot
from tests.support import DATA, UNIT_FILES, XLSX


async def state(world: World) -> tuple[int, int, int, list[tuple[int, str]]]:
    """What a refused action must not change (stranger audit entries aside)."""
    async with world.services.db.session() as s:
        events = (
            await s.exec(select(func.count()).select_from(Event).where(Event.kind != "stranger"))
        ).one()
        outbox = (
            await s.exec(  # the morning digest may go out meanwhile: not a change
                select(func.count())
                .select_from(Notification)
                .where(Notification.template != "digest")
            )
        ).one()
        files = (await s.exec(select(func.count()).select_from(StoredFile))).one()
        steps = [
            (r.id, r.state.value)
            for r in (await s.exec(select(RunStep).order_by(RunStep.id))).all()
        ]
    return events, outbox, files, steps


async def rows(world: World) -> dict[str, list[dict[str, object]]]:
    """Every row a refused action must leave as it was (stranger audit
    entries and the morning digest, which may go out meanwhile, aside)."""
    tables: list[type[SQLModel]] = [
        Run,
        RunStep,
        Assignment,
        StoredFile,
        Event,
        Notification,
        PendingInput,
        Meeting,
        Attendance,
    ]
    out: dict[str, list[dict[str, object]]] = {}
    async with world.services.db.session() as s:
        for table in tables:
            found = (await s.exec(select(table))).all()
            out[table.__name__] = sorted(
                (
                    r.model_dump()
                    for r in found
                    if getattr(r, "kind", "") != "stranger"
                    and getattr(r, "template", "") != "digest"
                ),
                key=repr,
            )
    return out


def not_allowed(world: World, *roles: str) -> str:
    """Exactly what a refused button press shows: the not-allowed template."""
    return plain(world.services.texts.render("errors/not_allowed", roles=list(roles)))[:190]


def task6_step(task6: dict[str, object]) -> int:
    markup = task6["reply_markup"]
    assert isinstance(markup, dict)
    return int(markup["inline_keyboard"][0][0]["callback_data"].split(":")[1])


async def to_collection(world: World) -> dict[str, FakeUser]:
    """People join in chat; the run is brought to step 6 through the engine."""
    p = {
        "kepala": await world.join("kepala", 1001, "Kepala", "kepala_badan"),
        "sekretaris": await world.join("sekretaris", 1002, "Sekretaris", "sekretaris"),
        "rina": await world.join("rina", 1003, "Rina", "perencana"),
    }
    units = list(UNIT_FILES)
    p["unit1"] = await world.join("unit1", 2001, "Staf 1", "anggota_tim", units[0])
    p["unit2"] = await world.join("unit2", 2002, "Staf 2", "anggota_tim", units[1])
    await world.to_collection()
    return p


async def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        unit1, unit2 = p["unit1"], p["unit2"]
        task6 = unit1.latest("Langkah 6")
        before = await state(world)

        # Forged callback data: unknown verb, malformed ids, someone else's step.
        for data in ("drop:1", "ok:abc", "ok:1:2", "x" * 64, "acc:999999"):
            await unit1.press_data(task6, data)
        await world.idle()
        answers = [a for a in world.server.callback_answers.values() if a.get("show_alert")]
        assert len(answers) == 5
        assert "tidak dikenali" in answers[0]["text"]
        assert "tidak ditemukan" in answers[-1]["text"]

        # A button pressed by the wrong person: the perencana's "Tutup dengan
        # alasan" on the collection, which is open, pressed by a unit.
        step2 = (await world.services.engine.queries.run_status())[0].steps[1].run_step_id
        q = await unit2.press_data(task6, f"cls:{task6_step(task6)}")
        await world.idle()
        assert world.server.callback_answers[q]["text"] == not_allowed(world, "perencana")

        # A message out of turn.
        await unit1.send_text("sudah saya kirim ya pak")
        await world.idle()
        assert "tidak sedang ditunggu" in unit1.messages[-1]["text"]

        # Files: too big, wrong type, empty, a sticker, a voice note.
        await unit1.send_document(b"x" * 100, "besar.xlsx", XLSX, declared_size=25 * 2**20)
        await unit1.send_document(b"MZ\x90", "program.exe", "application/x-msdownload")
        await unit1.send_document(b"", "kosong.xlsx", XLSX)
        await unit1.send_document(b"PK\x03\x04 rusak", "rusak.xlsx", XLSX)
        await unit1.send_sticker()
        await unit1.send_voice()
        await world.idle()
        replies = [m["text"] for m in unit1.messages[-6:]]
        assert "terlalu besar" in replies[0] and "20 MB" in replies[0]
        assert "tidak diterima" in replies[1] and "xlsx" in replies[1]
        assert "kosong" in replies[2]
        assert "tidak dapat dibuka sebagai buku kerja" in replies[3]
        assert "bukan stiker" in replies[4] and "bukan stiker" in replies[5]
        assert all("Tidak ada yang dicatat" in r for r in replies)
        # Only the broken workbook had to be fetched to be found out.
        assert len(world.server.calls("getFile")) == 1

        # A stranger's button press and file.
        stranger = world.user("x", 7777, "Orang Asing")
        await stranger.press_data(task6, f"up:{step2}")
        await stranger.send_document(b"PK", "a.xlsx", XLSX)
        await world.idle()
        assert "belum terdaftar" in stranger.messages[-1]["text"]

        assert await state(world) == before
        assert world.server.errors() == []


async def test_twice_and_redelivered_update(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        unit1, rina = p["unit1"], p["rina"]
        update_id = await unit1.send_document(
            DATA / list(UNIT_FILES.values())[0], list(UNIT_FILES.values())[0], XLSX
        )
        await world.idle()
        after_upload = await state(world)
        await world.server.redeliver(update_id)  # as Telegram does after a restart
        await world.idle()
        assert await state(world) == after_upload
        assert len(unit1.find("Tanda terima")) == 1

        review = [m for m in rina.documents() if "Berkas masuk" in (m.get("caption") or "")][-1]
        accept_data = review["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        first = await rina.press(review, "Terima")
        await world.idle()
        assert review.get("reply_markup") is None  # the done action's buttons are gone
        after_accept = await state(world)
        second = await rina.press_data(review, accept_data)  # a stale button, pressed again
        await world.idle()
        assert world.server.callback_answers[first].get("show_alert") is None
        assert "Sudah diproses" in world.server.callback_answers[second]["text"]
        assert await state(world) == after_accept
        async with world.services.db.session() as s:
            accepted = (
                await s.exec(
                    select(func.count()).select_from(Event).where(Event.kind == "file_accepted")
                )
            ).one()
        assert accepted == 1


async def test_a_question_that_no_longer_stands_is_dropped(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        dodi = await world.join("dodi", 1004, "Dodi", "perencana")
        name = list(UNIT_FILES.values())[0]
        await p["unit1"].send_document(DATA / name, name, XLSX)
        await world.idle()
        rina_review = [
            m for m in p["rina"].documents() if "Berkas masuk" in (m.get("caption") or "")
        ]
        # The file went to Rina (unit 1's reviewer on duty); Dodi opens it
        # from his collection message, as any planner may.
        assert not [m for m in dodi.documents() if "Berkas masuk" in (m.get("caption") or "")]
        await dodi.send_command("/tugas")
        await world.idle()
        listing = [m for m in dodi.messages if "Lihat berkas unit" in str(m.get("reply_markup"))]
        await dodi.press(listing[-1], "Lihat berkas unit")
        await world.idle()
        dodi_review = dodi.documents()[-1]
        await p["rina"].press(rina_review[-1], "Kembalikan")  # Rina starts to write a note...
        await world.idle()
        await dodi.press(dodi_review, "Terima")  # ...while Dodi accepts the file
        await world.idle()
        await p["rina"].send_text("Tolong perbaiki")
        await world.idle()
        assert "Sudah diproses" in p["rina"].messages[-1]["text"]
        await p["rina"].send_text("halo?")
        await world.idle()
        assert "tidak sedang ditunggu" in p["rina"].messages[-1]["text"]
        async with world.services.db.session() as s:
            kinds = [e.kind for e in (await s.exec(select(Event))).all()]
        assert kinds.count("file_accepted") == 1 and "file_returned" not in kinds


async def test_the_wrong_person_on_an_open_step_is_refused(tmp_path: Path) -> None:
    """Buttons of steps that are still open, pressed by someone whose step it
    is not: exactly the not-allowed reply, and not one row changes."""
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        unit1 = await world.join("unit1", 2001, "Staf 1", "anggota_tim", list(UNIT_FILES)[0])
        unit2 = await world.join("unit2", 2002, "Staf 2", "anggota_tim", list(UNIT_FILES)[1])

        # Step 2 is open for the perencana: a unit presses its Selesai and
        # its upload button.
        await kepala.send_command("/mulai", "TW III")
        await world.idle()
        form_task = rina.latest("Langkah 2")
        step2 = int(form_task["reply_markup"]["inline_keyboard"][0][0]["callback_data"][3:])
        before = await rows(world)
        pressed = [
            await unit1.press_data(form_task, f"ok:{step2}"),
            await unit1.press_data(form_task, f"up:{step2}"),
        ]
        await world.idle()
        for q in pressed:
            assert world.server.callback_answers[q]["text"] == not_allowed(world, "perencana")
        assert await rows(world) == before

        # Step 6: a unit's file awaits review; another unit presses the
        # perencana's Terima and Kembalikan on it, and uploads for unit 1.
        await world.to_collection(start=False)
        name = list(UNIT_FILES.values())[0]
        await unit1.send_document(DATA / name, name, XLSX)
        await world.idle()
        review = [m for m in rina.documents() if "Berkas masuk" in (m.get("caption") or "")][-1]
        [accept, back] = [b["callback_data"] for b in review["reply_markup"]["inline_keyboard"][0]]
        assert accept.startswith("acc:") and back.startswith("ret:")
        task6 = unit2.latest("Langkah 6")
        before = await rows(world)
        pressed = [
            await unit2.press_data(task6, accept),
            await unit2.press_data(task6, back),
        ]
        await world.idle()
        for q in pressed:
            assert world.server.callback_answers[q]["text"] == not_allowed(world, "perencana")
        unit1_task = unit1.latest("Langkah 6")
        own_up = unit1_task["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        q = await unit2.press_data(task6, own_up)  # unit 1's upload button, with its unit
        await world.idle()
        wrong_unit = plain(world.services.texts.render("errors/wrong_unit"))
        assert world.server.callback_answers[q]["text"] == wrong_unit
        assert await rows(world) == before
        assert world.server.errors() == []
