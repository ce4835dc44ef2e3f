"""Admins and everyday commands in chat."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.models import Event, Member, Run, RunState, RunStep
from tests.fakes.world import ADMIN_ID, running_bot
from tests.support import XLSX, workbook


async def test_admin_invites_lists_revokes_and_controls_deadlines(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await admin.send_command("/undang", "anggota_tim Sekretariat")
        await world.idle()
        link = admin.latest("Undangan untuk")["text"].splitlines()[-1]
        assert link.startswith("https://t.me/sop_test_bot?start=")
        staff = world.user("staf", 2001, "Staf Sekretariat")
        await staff.send_command("/start", link.split("start=")[1])
        await world.idle()
        assert "Sekretariat" in staff.latest("Selamat datang")["text"]

        # Not an admin: refused.
        await staff.send_command("/anggota")
        await world.idle()
        assert "tidak berwenang" in staff.messages[-1]["text"]

        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("rina", 1003, "Rina", "perencana")
        await world.people["kepala"].send_command("/mulai", "TW IV 2026")
        # Different people's updates are handled side by side: the run first.
        await world.idle()
        await admin.send_command("/jeda", "1")
        await admin.send_command("/tenggat", "1 2 03-11-2026 10:00")
        await admin.send_command("/tenggat", "1 9 03-11-2026 10:00")
        await admin.send_command("/lanjutkan", "1")
        await world.idle()
        assert admin.latest("dijeda")
        assert "Selasa, 3 November 2026 10:00 WIB" in admin.latest("Batas waktu langkah 2")["text"]
        assert "belum atau tidak lagi terbuka" in admin.latest("terbuka")["text"]
        assert admin.latest("aktif kembali")

        await admin.send_command("/anggota")
        await world.idle()
        listing = admin.latest("Anggota")["text"]
        staff_id = next(
            line.split()[0][1:] for line in listing.splitlines() if "Staf Sekretariat" in line
        )
        await admin.send_command("/cabut", staff_id)
        await world.idle()
        assert "dicabut" in admin.latest("dicabut")["text"]
        await staff.send_command("/tugas")
        await world.idle()
        assert "Keanggotaan Anda sudah dicabut" in staff.messages[-1]["text"]

        async with world.services.db.session() as s:
            step2 = (await s.exec(select(RunStep).where(RunStep.number == 2))).one()
            kinds = [e.kind for e in (await s.exec(select(Event))).all()]
            revoked = (await s.exec(select(Member).where(Member.telegram_id == 2001))).one()
        assert step2.due_at.astimezone(world.services.texts.tz).hour == 10
        assert {"reminders_paused", "reminders_resumed", "due_moved", "member_revoked"} <= set(
            kinds
        )
        assert not revoked.active


async def test_everyday_commands(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        await rina.send_command("/tugas")
        await world.idle()  # before the run (people are handled side by side)
        await kepala.send_command("/mulai")
        await world.idle()
        assert "Tidak ada tugas" in rina.messages[-1]["text"]
        assert kepala.latest("Tuliskan nama atau periode")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        await rina.send_command("/tugas")
        await rina.send_command("/bantuan")
        await rina.send_command("/perintahaneh")
        await world.idle()
        task = next(m for m in reversed(rina.messages) if "Limpahkan" in str(m.get("reply_markup")))
        assert [b["text"] for row in task["reply_markup"]["inline_keyboard"] for b in row] == [
            "📤 Unggah berkas",
            "✅ Selesai",
            "👥 Limpahkan",
        ]
        assert "/tugas" in rina.latest("Bantuan")["text"]
        assert "/mulai" not in rina.latest("Bantuan")["text"]
        assert "tidak dikenal" in rina.messages[-1]["text"]

        # Selesai without the required file: refused, nothing changes.
        await rina.press(task, "Selesai")
        await world.idle()
        answer = list(world.server.callback_answers.values())[-1]
        assert "Belum ada berkas" in answer["text"]

        # /batal cancels what the bot waits for.
        await rina.press(task, "Unggah berkas")
        await rina.send_command("/batal")
        await rina.send_document(b"PK", "form.xlsx", XLSX)
        await world.idle()
        cancelled = rina.latest("isian yang ditunggu")["text"]
        assert "Dibatalkan" in cancelled and "berkas yang diminta" in cancelled, cancelled
        assert "Tanda terima" in rina.messages[-1]["text"]  # the only task takes it anyway

        await kepala.send_command("/status", "lengkap")
        await world.idle()
        status = kepala.latest("(kegiatan #1)")["text"]
        assert "2. Membuat format" in status and "standar 1 jam" in status
        await kepala.send_command("/hentikan", "1 Salah periode")
        await world.idle()
        assert rina.latest("Dibatalkan: TW IV 2026")
        async with world.services.db.session() as s:
            assert (await s.exec(select(Run))).one().state == RunState.cancelled


async def test_member_of_two_units_is_asked_where_a_file_goes(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
        await world.join("rina", 1003, "Rina", "perencana")
        staf = await world.join("staf", 2001, "Staf", "anggota_tim", "Sekretariat")
        await staf.send_command(
            "/start", await world.invite("anggota_tim", "Bidang Politik Dalam Negeri")
        )
        await world.idle()
        await world.to_collection()

        await staf.send_document(workbook("Bidang Politik Dalam Negeri"), "data.xlsx", XLSX)
        await world.idle()
        question = staf.latest("Berkas ini untuk yang mana")
        labels = [b["text"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
        assert any("Politik Dalam Negeri" in label for label in labels), labels
        await staf.press(question, "Politik Dalam Negeri")
        await world.idle()
        assert "Bidang Politik Dalam Negeri" in staf.latest("Tanda terima")["text"]
        assert world.server.errors() == []


async def test_a_planner_hands_a_task_to_a_colleague(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        dodi = await world.join("dodi", 1004, "Dodi", "perencana")
        unit = await world.join("unit1", 2001, "Staf", "anggota_tim", "Sekretariat")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()  # the run first (people are handled side by side)
        await rina.send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(rina.messages) if "Limpahkan" in str(m.get("reply_markup")))
        await unit.press(line, "Limpahkan")  # not theirs: refused
        await world.idle()
        await rina.press(line, "Limpahkan")
        await world.idle()
        assert "tidak berwenang" in list(world.server.callback_answers.values())[-2]["text"]
        question = rina.latest("Limpahkan tugas ini kepada siapa")
        names = [b["text"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
        # Colleagues who could hold it, with their role; never oneself.
        assert names == ["Dodi (Kasubbag Perencanaan / Perencana)", "✖️ Batal"]
        await rina.press(question, "Dodi")
        await world.idle()
        assert "dilimpahkan kepada Dodi" in rina.latest("dilimpahkan")["text"]
        assert dodi.latest("Tugas dilimpahkan kepada Anda")
        await rina.send_command("/tugas")
        await world.idle()
        assert "Tidak ada tugas" in rina.messages[-1]["text"]
        async with world.services.db.session() as s:
            ev = (await s.exec(select(Event).where(Event.kind == "reassigned"))).one()
        assert (ev.details["by"], ev.details["to_member"]) == ("Rina", "Dodi")


async def test_mulai_can_name_another_sop(tmp_path: Path) -> None:
    from bot.sop import parse_sop
    from tests.test_second_sop import CUTI

    async with running_bot(tmp_path) as world:
        world.services.sops.add(parse_sop(CUTI))
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await admin.send_command("/mulai", "permohonan-cuti: Cuti Desember | mohon diproses")
        await admin.send_command("/mulai", "Data Kinerja: TW IV")  # a colon in a plain title
        await world.idle()
        started = admin.find("dimulai")
        assert "Permohonan Cuti Pegawai" in started[0]["text"]
        assert "Data Kinerja: TW IV" in started[1]["text"]
        assert "Mekanisme Pengumpulan Data Kinerja" in started[1]["text"]


async def test_help_follows_the_sop_file_for_each_role(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        staf = await world.join("staf", 2001, "Staf", "anggota_tim", "Sekretariat")
        for person in (kepala, rina, staf):
            await person.send_command("/bantuan")
        await world.idle()
        head, planner, unit = (p.latest("Bantuan")["text"] for p in (kepala, rina, staf))
        # Who may start a run comes from the SOP's first step (the Kepala Badan).
        assert "/mulai" in head and "/mulai" not in planner and "/mulai" not in unit
        assert "10. Kepala Badan mengoreksi" in head and "menyetujui dokumen" in head
        assert "6. Menghimpun format" in unit and "Bot akan membalas dengan tanda terima" in unit
        assert "6. Menghimpun format" in planner and "(memeriksa berkas)" in planner
        assert "Terima / Kembalikan" in planner and "Terima / Kembalikan" not in unit
        assert "/laporan" in planner and "/laporan" not in unit
        assert "<b>Admin</b>" not in head + planner + unit
