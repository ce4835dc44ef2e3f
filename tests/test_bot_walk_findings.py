"""What a new user found walking the whole SOP in chat, each fixed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.models import Run, RunState
from tests.fakes.world import ADMIN_ID, running_bot

WIB = ZoneInfo("Asia/Jakarta")


async def test_hentikan_without_a_reason_shows_the_usage_and_stops_nothing(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        await kepala.send_command("/hentikan", "1")
        await world.idle()
        answer = kepala.messages[-1]["text"]
        assert "/hentikan nomor-kegiatan alasan" in answer and "Alasan wajib" in answer
        assert "Langkah" not in answer
        async with world.services.db.session() as s:
            assert (await s.exec(select(Run))).one().state == RunState.open

        # With the reason: cancelled; the one who cancels gets one message
        # (the answer, not also the notice to the others). The morning
        # digest may come meanwhile: the deadline timer runs on its own.
        before = len(kepala.messages)
        await kepala.send_command("/hentikan", "1 Salah periode")
        await world.idle()
        new = [t for t in kepala.texts()[before:] if "Ringkasan pagi" not in t]
        assert len(new) == 1 and "dibatalkan" in new[0], new
        assert rina.latest("Dibatalkan: TW IV 2026")


async def test_a_revoked_member_is_told_and_later_answered_as_revoked(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        staf = await world.join("staf", 2001, "Staf", "anggota_tim", "Sekretariat")
        stranger = world.user("stranger", 5555, "Orang Lain")
        member = await world.services.members.by_telegram(2001)
        assert member is not None
        await admin.send_command("/cabut", str(member.id))
        await world.idle()
        told = staf.latest("Keanggotaan Anda dicabut")["text"]
        assert "Hubungi admin" in told
        await staf.send_command("/tugas")
        await stranger.send_command("/tugas")
        await world.idle()
        assert staf.messages[-1]["text"] == (
            "⛔ Keanggotaan Anda sudah dicabut oleh admin; hubungi admin bila ini keliru."
        )
        assert "belum terdaftar" in stranger.messages[-1]["text"]


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_delegation_offers_colleagues_only_and_the_old_button_says_to_whom(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        dodi = await world.join("dodi", 1004, "Dodi", "perencana")
        andi = await world.join("andi", 2001, "Andi", "anggota_tim", "Sekretariat")
        await world.join("budi", 2002, "Budi", "anggota_tim", "Sekretariat")
        await world.join("citra", 2003, "Citra", "anggota_tim", "Bidang Politik Dalam Negeri")
        ids = {k: await world.member_id(p) for k, p in world.people.items()}
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        task = rina.latest("Langkah 2")
        selesai = next(
            b["callback_data"]
            for row in task["reply_markup"]["inline_keyboard"]
            for b in row
            if "Selesai" in b["text"]
        )
        await rina.send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(rina.messages) if "Limpahkan" in str(m.get("reply_markup")))
        await rina.press(line, "Limpahkan")
        await world.idle()
        question = rina.latest("Limpahkan tugas ini kepada siapa")
        assert "Nama Anda dan penerima dicatat dalam riwayat kegiatan" in question["text"]
        assert "log" not in question["text"]
        # Only who could hold the task: no head, no admin, no unit staff, never oneself.
        assert buttons(question) == ["Dodi (Kasubbag Perencanaan / Perencana)", "✖️ Batal"]

        # A forged choice of someone outside that set is refused; nothing changes.
        assignment = int(
            next(
                b["callback_data"]
                for row in question["reply_markup"]["inline_keyboard"]
                for b in row
                if b["callback_data"].startswith("to:")
            ).split(":")[1]
        )
        forged = await rina.press_data(question, f"to:{assignment}:{ids['kepala']}")
        await world.idle()
        refusal = rina.answer(forged)
        assert refusal is not None
        assert "Kepala tidak dapat menerima tugas ini" in refusal["text"]
        assert "Kasubbag Perencanaan / Perencana" in refusal["text"]
        assert kepala.find("Tugas dilimpahkan kepada Anda") == []

        await rina.press(question, "Dodi")
        await world.idle()
        assert "Tugas dilimpahkan kepada Dodi" in rina.messages[-1]["text"]
        assert "Langkah 2" in dodi.latest("Tugas dilimpahkan kepada Anda")["text"]

        # Rina's task message loses its buttons and says to whom it went.
        assert buttons(task) == [] and "Dilimpahkan kepada Dodi oleh Rina" in task["text"]
        # A button she still has elsewhere (the same task seen on another
        # device before the edit): she handed it over, she is told so (not
        # "tidak berwenang").
        pressed = await rina.press_data(task, selesai)
        await world.idle()
        said = rina.answer(pressed)
        assert said is not None
        assert "Anda sudah melimpahkan tugas ini kepada Dodi" in said["text"], said
        assert "Senin, 2 November 2026 08:00 WIB" in said["text"]
        assert "tidak berwenang" not in said["text"]

        await admin.send_command("/riwayat", "1")
        await world.idle()
        history = admin.latest("Riwayat")["text"]
        assert "langkah 2 dilimpahkan dari Rina kepada Dodi" in history, history

        # A unit's task goes to a colleague of that unit only.
        await world.to_collection()  # a second run
        await andi.send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(andi.messages) if "Limpahkan" in str(m.get("reply_markup")))
        await andi.press(line, "Limpahkan")
        await world.idle()
        assert buttons(andi.latest("Limpahkan tugas ini kepada siapa")) == [
            "Budi (Sekretariat)",
            "✖️ Batal",
        ]


async def test_a_meeting_outside_office_hours_is_asked_about_before_inviting(
    tmp_path: Path,
) -> None:
    from bot.views import IncomingFile
    from tests.support import FORM, XLSX

    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        sekretaris = await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        e = world.services.engine
        rid = await world.member_id(rina)
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        [form] = await e.queries.tasks(rid)
        await e.collection.upload(
            rid, form.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
        )
        await e.steps.complete(rid, form.run_step_id)
        [send] = await e.queries.tasks(rid)
        await e.steps.complete(rid, send.run_step_id)
        await world.idle()
        task4 = [m for m in sekretaris.find("Langkah 4") if m.get("reply_markup")][-1]
        await sekretaris.press(task4, "Atur rapat")
        await world.idle()

        # Saturday: not a working day. Asked, nothing sent.
        await sekretaris.send_text("07-11-2026 09:00 Aula")
        await world.idle()
        ask = sekretaris.messages[-1]
        assert "Sabtu, bukan hari kerja" in ask["text"], ask["text"]
        assert buttons(ask) == ["✅ Ya, tetap", "✏️ Ubah"]
        assert kepala.find("Undangan rapat") == []

        # Ubah: asked for a new time; 19:00 on a Tuesday is after closing.
        await sekretaris.press(ask, "Ubah")
        await world.idle()
        assert sekretaris.latest("Tulis tanggal, jam dan tempat rapat")
        await sekretaris.send_text("03-11-2026 19:00 Aula")
        await world.idle()
        ask = sekretaris.messages[-1]
        assert "di luar jam kantor (hari itu 07:30–16:00 WIB)" in ask["text"], ask["text"]
        assert kepala.find("Undangan rapat") == []

        # Ya, tetap: the organiser keeps it; the invitations go out.
        markup = ask["reply_markup"]["inline_keyboard"]
        keep = next(b["callback_data"] for row in markup for b in row if "Ya, tetap" in b["text"])
        await sekretaris.press(ask, "Ya, tetap")
        await world.idle()
        assert (
            "Rapat dijadwalkan Selasa, 3 November 2026 19:00 WIB"
            in sekretaris.latest("Rapat dijadwalkan")["text"]
        )
        assert "3 November 2026 19:00" in kepala.latest("Undangan rapat")["text"]
        # Pressed again, "Ya, tetap" says the step is settled, not to press an
        # "Atur rapat" button the task no longer has.
        query = await sekretaris.press_data(ask, keep)
        await world.idle()
        alert = (sekretaris.answer(query) or {}).get("text", "")
        assert "Atur rapat" not in alert and "Sudah diproses" in alert, alert

        # An ordinary working hour (the midday break too) is not asked about.
        calendar = world.services.engine.calendar
        assert calendar.outside_hours(datetime(2026, 11, 3, 9, 0, tzinfo=WIB)) is None
        assert calendar.outside_hours(datetime(2026, 11, 3, 12, 30, tzinfo=WIB)) is None
        assert calendar.outside_hours(datetime(2026, 11, 3, 7, 0, tzinfo=WIB)) == {
            "reason": "outside_hours",
            "opens": "07:30",
            "closes": "16:00",
        }
