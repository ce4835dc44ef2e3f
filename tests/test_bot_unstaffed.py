"""A step nobody holds, in chat: the head is warned, /status flags it, and the
planner who joins later receives the task without asking for it."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.world import ADMIN_ID, running_bot


async def test_a_planner_who_joins_late_gets_the_open_task(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        started = kepala.latest("dimulai")["text"]
        assert "kini di tangan: belum ada" in started
        assert "Belum ada pelaksana untuk Kasubbag Perencanaan / Perencana" in started
        for person in (kepala, admin):
            warning = person.latest("belum ada pelaksana")["text"]
            assert "Kasubbag Perencanaan / Perencana" in warning
            assert "/undang perencana" in warning
        await kepala.send_command("/status")
        await world.idle()
        assert (
            "belum ada pelaksana: Kasubbag Perencanaan / Perencana"
            in (kepala.latest("TW IV 2026")["text"])
        )

        rina = await world.join("rina", 1003, "Rina", "perencana")
        await world.idle()
        task = rina.latest("Langkah 2")
        assert task["text"].startswith("📋 Tugas baru") and task.get("reply_markup")
