"""What a new user found walking the whole SOP in chat, each fixed."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.models import Run, RunState
from tests.fakes.world import ADMIN_ID, running_bot


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

        # With the reason: cancelled; the one who cancels gets one message.
        before = len(kepala.messages)
        await kepala.send_command("/hentikan", "1 Salah periode")
        await world.idle()
        new = kepala.texts()[before:]
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
