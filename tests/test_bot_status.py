"""/status fits a phone screen: each open run at a glance (the open steps and
the next one a line each, the rest counted), its whole table one tap or
`/status lengkap` away; once no run is open, the last runs that ended."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.models import Run, RunState
from bot.texts import Texts, visible_length
from tests.fakes.world import running_bot
from tests.support import Office, to_collection
from tests.test_bot_settled_tasks import buttons
from tests.test_bot_walkthrough import enrol_everyone

GLANCE_LIMIT = 800  # characters, the seed SOP's run at step 6 with five units


async def test_status_at_a_glance_with_the_whole_table_a_tap_away(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        await world.to_collection()
        kepala = p["kepala"]
        await kepala.send_command("/status")
        await world.idle()
        glance = kepala.latest("(kegiatan #1)")
        text = glance["text"]
        print(f"\n/status at step 6 ({len(text)} characters):\n{text}")
        assert len(text) < GLANCE_LIMIT, len(text)
        lines = text.splitlines()
        assert any(x.startswith("🟡 6. Menghimpun format data") for x in lines), text
        assert "belum mengirim (5): Sekretariat, Bidang Ideologi" in text
        assert "Bidang Kewaspadaan Nasional dan Penanganan Konflik" in text
        assert any(x.startswith("⚪️ 7. ") and x.endswith("(berikutnya)") for x in lines)
        assert "Selesai 5 langkah, 8 belum dimulai." in text
        assert "15. Pengarsipan" not in text and "standar" not in text
        assert buttons(glance) == ["📋 Tabel lengkap"]

        # One tap: the same message becomes the whole table, as /status was.
        count = len(kepala.messages)
        await kepala.press(glance, "Tabel lengkap")
        await world.idle()
        assert len(kepala.messages) == count
        table = kepala.messages[kepala.messages.index(glance)]
        assert "15. Pengarsipan" in table["text"] and "standar 2 jam" in table["text"]
        assert "Staf 1 (Sekretariat)" in table["text"]
        assert not table.get("reply_markup")

        # One command: every open run's whole table, as a new message.
        await kepala.send_command("/status", "lengkap")
        await kepala.send_command("/status", "apa")
        await world.idle()
        assert "15. Pengarsipan" in kepala.messages[-2]["text"]
        assert "/status lengkap" in kepala.messages[-1]["text"]
        assert world.server.errors() == []


async def test_status_names_the_runs_that_ended(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await kepala.send_command("/status")
        await world.idle()
        assert kepala.last["text"] == "Tidak ada kegiatan yang sedang berjalan."

        await kepala.send_command("/mulai", "TW III 2026")
        await world.idle()
        # The first run finished (the walk to its end is tested elsewhere).
        world.clock.advance(days=3)
        async with world.services.db.transaction() as s:
            run = (await s.exec(select(Run))).one()
            run.state, run.ended_at = RunState.done, world.clock.now()
            s.add(run)
        world.clock.advance(days=1)
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        await kepala.send_command("/hentikan", "2 Salah periode")
        await world.idle()
        await kepala.send_command("/status")
        await world.idle()
        text = kepala.last["text"]
        assert text.startswith("Tidak ada kegiatan yang sedang berjalan.")
        lines = text.splitlines()
        newest = lines.index(next(x for x in lines if "TW IV 2026 (#2)" in x))
        assert "dibatalkan Jumat, 6 November 2026" in lines[newest]
        assert "TW III 2026 (#1) selesai Kamis, 5 November 2026" in lines[newest + 1]
        assert "/riwayat nomor" in text and not kepala.last.get("reply_markup")
        assert world.server.errors() == []


async def test_a_late_step_is_red_and_late_finished_steps_are_counted(office: Office) -> None:
    e = office.engine
    run_id = await to_collection(office)
    office.clock.advance(days=3)
    [status] = await e.queries.run_status(run_id)
    glance = status.glance()
    assert [st.number for st in glance.shown] == [6]
    assert glance.next_step is not None and glance.next_step.number == 7
    assert (glance.done, glance.waiting) == (5, 8)
    text = Texts().render("status_brief", run=status, blocked=[])
    assert "🔴 6." in text and "<b>terlambat" in text
    assert visible_length(text) < GLANCE_LIMIT

    # A step that finished late is named in the count of the finished ones.
    late = next(st for st in status.steps if st.number == 2)
    late.late_minutes = 30.0
    text = Texts().render("status_brief", run=status, blocked=[])
    assert "Selesai 5 langkah (terlambat: 2), 8 belum dimulai." in text
