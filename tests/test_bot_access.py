"""Who gets in: configured admins on any first message, and refused
invitations on the record."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.models import Event, Member
from tests.fakes.world import ADMIN_ID, running_bot


async def test_a_configured_admin_is_enrolled_by_any_first_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/anggota")  # no /start before
        await world.idle()
        assert "belum terdaftar" not in admin.messages[-1]["text"]
        assert "Anggota" in admin.messages[-1]["text"]
        async with world.services.db.session() as s:
            member = (await s.exec(select(Member).where(Member.telegram_id == ADMIN_ID))).one()
            joined = (await s.exec(select(Event).where(Event.kind == "member_joined"))).all()
            strangers = (await s.exec(select(Event).where(Event.kind == "stranger"))).all()
        assert member.active and [e.details["source"] for e in joined] == ["ADMIN_TELEGRAM_IDS"]
        assert strangers == []


async def test_a_replayed_invitation_is_refused_and_recorded(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        token = await world.invite("perencana")
        rina = world.user("rina", 1003, "Rina")
        await rina.send_command("/start", token)
        await world.idle()
        other = world.user("x", 7777, "Orang Lain")
        await other.send_command("/start", token)
        await world.idle()
        assert "sudah dipakai" in other.messages[-1]["text"]
        async with world.services.db.session() as s:
            refused = (await s.exec(select(Event).where(Event.kind == "invitation_refused"))).one()
        assert refused.details["telegram_id"] == 7777
        assert refused.details["reason"] == "used"
        assert token not in str(refused.details)
        assert world.server.errors() == []
