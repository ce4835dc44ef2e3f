"""Task messages follow their step: when it is done, closed, delegated or the
run cancelled, everyone's task message loses its buttons and says who did
it and when; the reviewer hears when a collection opens; a step held at a
meeting counts its time from the meeting."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.botapi import Person as FakeUser
from bot.models import Notification, OutboxState
from tests.fakes.world import World, running_bot
from tests.support import FORM, XLSX
from tests.test_bot_walkthrough import enrol_everyone, with_buttons


def buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def finish_step_2(world: World, p: dict[str, FakeUser]) -> tuple[dict, dict]:
    """Rina uploads the form and presses Selesai at 08:05; returns both
    planners' step-2 task messages."""
    await p["kepala"].send_command("/mulai", "TW III | Mohon segera")
    await world.idle()
    rina2, dodi2 = with_buttons(p["rina"], "Langkah 2"), with_buttons(p["dodi"], "Langkah 2")
    await p["rina"].send_document(FORM, FORM.name, XLSX, reply_to=rina2)
    await world.idle()
    world.clock.advance(minutes=5)
    await p["rina"].press(rina2, "Selesai")
    await world.idle()
    return rina2, dodi2


async def to_step_6(world: World, p: dict[str, FakeUser]) -> dict[str, dict]:
    """Steps 3-5 in chat, after finish_step_2: step 3 by Dodi, the meeting
    set for Tuesday 09:00 and finished by the head at 09:05. Returns the
    other participants' step-5 task messages."""
    await p["dodi"].press(with_buttons(p["dodi"], "Langkah 3"), "Kirim ke semua unit")
    await world.idle()
    await p["sekretaris"].press(with_buttons(p["sekretaris"], "Langkah 4"), "Atur rapat")
    await world.idle()
    await p["sekretaris"].send_text("03-11-2026 09:00 Ruang Rapat Badan")
    await world.idle()
    fives = {k: with_buttons(p[k], "Langkah 5") for k in ("sekretaris", "rina", "dodi")}
    world.clock.advance(days=1, hours=1)  # Tuesday 09:05, the meeting is on
    await p["kepala"].press(with_buttons(p["kepala"], "Langkah 5"), "Selesai")
    await world.idle()
    return fives


async def test_colleagues_see_who_finished_and_lose_the_buttons(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        rina2, dodi2 = await finish_step_2(world, p)
        done = "✅ Diselesaikan oleh Rina, Senin, 2 November 2026 08:05 WIB"
        # Dodi's own message, edited in place: the task is still readable.
        assert done in dodi2["text"] and "Langkah 2" in dodi2["text"]
        assert buttons(dodi2) == [] and buttons(rina2) == []
        assert done in rina2["text"]
        assert not p["dodi"].find("Tombol pada pesan tugas sebelumnya")  # no new message

        # Step 5: one participant presses Selesai; the others are told on theirs.
        fives = await to_step_6(world, p)
        assert "Diselesaikan oleh Dodi" in p["rina"].latest("Langkah 3")["text"]
        for key, message in fives.items():
            assert buttons(message) == [], key
            assert (
                "✅ Diselesaikan oleh Drs. Kepala, Selasa, 3 November 2026 09:05 WIB"
                in message["text"]
            ), key
        assert world.server.errors() == []


async def test_the_meeting_step_counts_from_the_meeting_in_status(tmp_path: Path) -> None:
    """Step 5 opened on Monday, its meeting on Tuesday 09:00, finished 09:05:
    5 minutes used, not the day in between."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await finish_step_2(world, p)
        await to_step_6(world, p)
        await p["sekretaris"].send_command("/status", "lengkap")
        await world.idle()
        status = p["sekretaris"].latest("📊")["text"]
        line5 = status.split(" 5. ")[1].split("\n\n")[0]
        assert "standar 2 jam · terpakai 5 menit" in line5, line5
        assert "terlambat" not in line5


async def test_the_reviewer_hears_when_the_collection_opens(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await finish_step_2(world, p)
        await to_step_6(world, p)
        # The planners are step 6's reviewer (the SOP file says so).
        for key in ("rina", "dodi"):
            started = with_buttons(p[key], "Pengumpulan dimulai")
            assert "Langkah 6" in started["text"] and "5 bidang/sekretariat" in started["text"]
            assert buttons(started) == ["🗂 Lihat berkas unit", "🔒 Tutup dengan alasan"]
        assert not p["unit1"].find("Pengumpulan dimulai")
        await p["dodi"].press(with_buttons(p["dodi"], "Pengumpulan dimulai"), "Lihat berkas unit")
        await world.idle()
        assert p["dodi"].latest("Berkas unit:")["text"].count("belum mengirim") == 5
        await p["rina"].press(with_buttons(p["rina"], "Pengumpulan dimulai"), "Tutup dengan")
        await world.idle()
        assert p["rina"].latest("alasan")
        assert world.server.errors() == []


async def test_a_task_message_too_old_to_edit_gets_a_new_line(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await p["kepala"].send_command("/mulai", "TW III")
        await world.idle()
        rina2, dodi2 = with_buttons(p["rina"], "Langkah 2"), with_buttons(p["dodi"], "Langkah 2")
        await p["rina"].send_document(FORM, FORM.name, XLSX, reply_to=rina2)
        await world.idle()
        world.clock.advance(days=3)  # Thursday: the task message is three days old
        before = len(p["dodi"].messages)
        await p["rina"].send_command("/tugas")
        await world.idle()
        await p["rina"].press(with_buttons(p["rina"], "Langkah 2"), "Selesai")
        await world.idle()
        assert "Diselesaikan" not in dodi2["text"]  # not edited...
        notice = p["dodi"].latest("Tombol pada pesan tugas sebelumnya")["text"]
        assert "TW III, langkah 2" in notice  # ...but told in a new message
        assert "✅ Diselesaikan oleh Rina, Kamis, 5 November 2026 08:00 WIB" in notice
        assert len(p["dodi"].messages) > before
        assert not p["rina"].find("Tombol pada pesan tugas")  # she acted: answered at once
        assert world.server.errors() == []


async def test_edits_telegram_refuses_are_tolerated(tmp_path: Path) -> None:
    """'message is not modified' means it already shows the edit; a message
    Telegram will not edit (deleted, say) gets the line as a new message."""
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        world.server.fail_next(
            "editMessageText",
            error_code=400,
            description="Bad Request: message is not modified",
            chat_id=p["rina"].id,
        )
        world.server.fail_next(
            "editMessageText",
            error_code=400,
            description="Bad Request: message to edit not found",
            chat_id=p["dodi"].id,
        )
        await finish_step_2(world, p)
        assert not p["rina"].find("Tombol pada pesan tugas sebelumnya")
        assert "Diselesaikan oleh Rina" in p["dodi"].latest("Tombol pada pesan tugas")["text"]
        async with world.services.db.session() as s:
            edits = (
                await s.exec(select(Notification).where(Notification.template == "settled"))
            ).all()
            assert {n.state for n in edits} == {OutboxState.sent}
            failed = (
                await s.exec(select(Notification).where(Notification.template == "delivery_failed"))
            ).all()
            assert failed == []


async def test_delegation_and_cancellation_clear_the_old_buttons(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await p["kepala"].send_command("/mulai", "TW III")
        await world.idle()
        rina2, dodi2 = with_buttons(p["rina"], "Langkah 2"), with_buttons(p["dodi"], "Langkah 2")
        await p["rina"].send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(p["rina"].messages) if "Limpahkan" in str(m))
        await p["rina"].press(line, "Limpahkan")
        await world.idle()
        await p["rina"].press(p["rina"].latest("Limpahkan tugas ini kepada siapa"), "Dodi")
        await world.idle()
        assert buttons(rina2) == []
        assert "↪️ Dilimpahkan kepada Dodi oleh Rina" in rina2["text"]
        assert buttons(dodi2) != []  # Dodi keeps his: the task is his now
        delegated = with_buttons(p["dodi"], "Tugas dilimpahkan kepada Anda")

        world.clock.advance(minutes=30)
        await p["kepala"].send_command("/hentikan", "1 Salah periode")
        await world.idle()
        for message in (dodi2, delegated):
            assert buttons(message) == []
            assert "🚫 Kegiatan dihentikan oleh Drs. Kepala" in message["text"]
        assert "Dilimpahkan" in rina2["text"] and "dihentikan" not in rina2["text"]
        assert world.server.errors() == []
