"""Invitations and membership, without Telegram."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.errors import InvalidInput, InvitationInvalid, NotAllowed, NotFound
from bot.models import Event, Invitation, Unit
from tests.support import Office


async def test_invitation_is_single_use_and_expires(office: Office) -> None:
    m = office.members
    token = await m.create_invitation("perencana", ttl_days=7)
    async with office.db.session() as s:
        stored = (await s.exec(select(Invitation))).all()
    assert token not in {i.token_hash for i in stored}  # only the hash is kept
    office.clock.advance(days=7, seconds=1)
    with pytest.raises(InvitationInvalid) as info:
        await m.redeem(token, telegram_id=1, name="Telat")
    assert info.value.context["reason"] == "expired"
    fresh = await m.create_invitation("anggota_tim", unit="Sekretariat")
    member, role = await m.redeem(fresh, telegram_id=1, name="Tepat")
    assert (role.role, role.unit_name) == ("anggota_tim", "Sekretariat")
    with pytest.raises(InvitationInvalid) as info:
        await m.redeem(fresh, telegram_id=2, name="Lain")
    assert info.value.context["reason"] == "used"
    for bad in ("", "short", "x" * 65, "bad token with spaces!"):
        with pytest.raises(InvitationInvalid):
            await m.redeem(bad, telegram_id=3, name="X")


async def test_roles_and_units_are_checked(office: Office) -> None:
    m = office.members
    with pytest.raises(InvalidInput):
        await m.create_invitation("bupati")
    with pytest.raises(InvalidInput):
        await m.create_invitation("anggota_tim")
    with pytest.raises(InvalidInput):
        await m.create_invitation("sekretaris", unit="Sekretariat")
    with pytest.raises(NotFound):
        await m.create_invitation("anggota_tim", unit="Bidang Yang Tidak Ada")
    with pytest.raises(NotAllowed):
        await m.create_invitation("perencana", created_by=office.id("perencana"))


async def test_strangers_are_audited_once_an_hour(office: Office) -> None:
    m = office.members
    assert await m.record_stranger(555, "message")
    for _ in range(20):
        assert not await m.record_stranger(555, "message")
    assert await m.record_stranger(556, "button")
    office.clock.advance(hours=1, seconds=1)
    assert await m.record_stranger(555, "message")
    async with office.db.session() as s:
        count = (
            await s.exec(select(func.count()).select_from(Event).where(Event.kind == "stranger"))
        ).one()
    assert count == 3


async def test_units_follow_the_office_file(office: Office) -> None:
    await office.members.sync_units(["Sekretariat", "Bidang Baru"])
    assert [u.name for u in await office.members.units()] == ["Sekretariat", "Bidang Baru"]
    async with office.db.session() as s:
        units = (await s.exec(select(Unit))).all()
    # Removed units are kept, inactive, so old records still name them.
    assert len(units) == 6 and sum(not u.active for u in units) == 4


async def test_refused_invitations_are_audited_without_the_token(office: Office) -> None:
    m = office.members
    token = await m.create_invitation("perencana")
    await m.redeem(token, telegram_id=701, name="Pertama")
    office.clock.advance(minutes=5)
    with pytest.raises(InvitationInvalid):
        await m.redeem(token, telegram_id=702, name="Kedua")  # reused
    with pytest.raises(InvitationInvalid):
        await m.redeem(token[:-3] + "zzz", telegram_id=703, name="Salah ketik")
    with pytest.raises(InvitationInvalid):
        await m.redeem("pendek", telegram_id=704, name="Rusak")
    for _ in range(5):  # a flood from one person: one entry an hour
        with pytest.raises(InvitationInvalid):
            await m.redeem(token, telegram_id=702, name="Kedua")
    async with office.db.session() as s:
        invitation = (await s.exec(select(Invitation))).all()[-1]
        refused = (
            await s.exec(
                select(Event).where(Event.kind == "invitation_refused").order_by(Event.seq)
            )
        ).all()
    assert [(e.details["telegram_id"], e.details["reason"]) for e in refused] == [
        (702, "used"),
        (703, "unknown"),
        (704, "unknown"),
    ]
    assert refused[0].details["invitation_id"] == invitation.id
    assert refused[0].details["token_sha256"] == invitation.token_hash[:12]
    assert all(token not in str(e.details) for e in refused)
    assert all(len(e.details["token_sha256"]) == 12 for e in refused)
