"""The bot in chat: joining, strangers, commands, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select

from bot.models import Event, Member
from tests.fakes.world import ADMIN_ID, running_bot


async def test_join_by_invitation_and_stranger(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        server = world.server
        # Someone not enrolled sees one command; a member, their own menu.
        assert [c["command"] for c in server.commands] == ["bantuan"]
        stranger = world.user("x", 5555, "Orang Asing")
        await stranger.send_text("halo")
        await world.idle()
        assert "belum terdaftar" in stranger.last["text"]
        assert len(stranger.messages) == 1

        token = await world.invite("perencana")
        rina = world.user("rina", 3001, "Rina")
        await rina.send_command("/start", token)
        await world.idle()
        assert "Selamat datang" in rina.last["text"]
        assert "Kasubbag Perencanaan / Perencana" in rina.last["text"]
        assert "• 2. Membuat format" in rina.last["text"]
        assert server.menu_of(rina.id)[:2] == ["tugas", "status"]
        assert server.menu_of(stranger.id) == ["bantuan"]

        # The same link again, by someone else: refused.
        other = world.user("o", 3002, "Budi")
        await other.send_command("/start", token)
        await other.send_command("/start", "not-a-valid-token!!")
        await world.idle()
        assert "sudah dipakai" in other.messages[0]["text"]
        assert "tidak dikenal" in other.messages[1]["text"]

        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await admin.send_command("/anggota")
        await world.idle()
        assert "Rina" in admin.last["text"]
        assert server.errors() == []
        async with world.services.db.session() as s:
            members = (await s.exec(select(Member.name))).all()
            strangers = (
                await s.exec(
                    select(func.count()).select_from(Event).where(Event.kind == "stranger")
                )
            ).one()
        assert sorted(members) == ["Admin", "Rina"]
        assert strangers == 1


async def test_unexpected_error_is_reported_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        rina = await world.join("rina", 3001, "Rina", "perencana")

        async def broken(member_id: int) -> list[object]:
            raise RuntimeError("database went away")

        monkeypatch.setattr(world.services.engine.queries, "tasks", broken)
        with caplog.at_level("ERROR", logger="sopbot.errors"):
            await rina.send_command("/tugas")
            await world.idle()
        assert rina.messages[-1]["text"].startswith("⚠️ Terjadi kesalahan")
        assert len(rina.messages[-1]["text"].splitlines()) == 1
        record = next(r for r in caplog.records if r.name == "sopbot.errors")
        assert "/tugas" in record.getMessage() and "database went away" in record.getMessage()
        # The admin gets a report naming the command, the person and the error,
        # once: the same kind of error again within ten minutes is not re-reported.
        [report] = admin.find("Laporan galat")
        assert "/tugas" in report["text"] and "Rina" in report["text"]
        assert "RuntimeError" in report["text"] and "database went away" in report["text"]
        await rina.send_command("/tugas")
        await world.idle()
        assert len(admin.find("Laporan galat")) == 1
        world.clock.advance(minutes=11)
        await rina.send_command("/tugas")
        await world.idle()
        assert len(admin.find("Laporan galat")) == 2
