"""Reminders and the outbox in chat: RetryAfter, blocked people, restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot.models import Event, Member, Notification, OutboxState
from tests.fakes.world import World, running_bot


async def flush(world: World) -> None:
    await world.app.bot_data["outbox"].flush(world.app.bot)
    await world.idle()


async def sweep(world: World) -> None:
    await world.app.bot_data["deadlines"].deadlines.sweep()
    await flush(world)


async def start_run(world: World) -> None:
    await world.join("kepala", 1001, "Kepala", "kepala_badan")
    await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
    await world.join("rina", 1003, "Rina", "perencana")
    await world.people["kepala"].send_command("/mulai", "TW III 2026")
    await world.idle()


async def test_reminder_escalation_in_chat(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        await start_run(world)
        rina, sekretaris = world.people["rina"], world.people["sekretaris"]
        world.clock.advance(minutes=59)
        await sweep(world)
        assert rina.find("Pengingat") == []
        world.clock.advance(minutes=2)  # 08:00 + 60 working minutes passed
        await sweep(world)
        reminder = rina.latest("Pengingat")
        assert "Terlambat: 1 menit" in reminder["text"]
        assert [b["text"] for b in reminder["reply_markup"]["inline_keyboard"][0]] == [
            "📤 Unggah berkas",
            "✅ Selesai",
        ]
        world.clock.advance(minutes=60)
        await sweep(world)
        assert "Eskalasi" in sekretaris.latest("Eskalasi")["text"]
        assert "Rina" in sekretaris.latest("Eskalasi")["text"]
        assert len(rina.find("Pengingat")) == 1


async def test_retry_after_is_honoured_and_nothing_dropped(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        world.server.fail_next("sendMessage", error_code=429, retry_after=7, chat_id=rina.id)
        await world.people["kepala"].send_command("/mulai", "TW III 2026")
        await world.idle()
        assert rina.find("Tugas baru") == []
        async with world.services.db.session() as s:
            row = (await s.exec(select(Notification).where(Notification.template == "task"))).one()
        assert row.state == OutboxState.pending
        assert row.not_before == world.clock.now() + timedelta(seconds=7)
        world.clock.advance(seconds=6)
        await flush(world)
        assert rina.find("Tugas baru") == []
        world.clock.advance(seconds=1)
        await flush(world)
        assert len(rina.find("Tugas baru")) == 1
        async with world.services.db.session() as s:
            states = {n.state for n in (await s.exec(select(Notification))).all()}
        assert states == {OutboxState.sent}


async def test_network_error_retried_and_blocked_person_recorded(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        dodi = await world.join("dodi", 1004, "Dodi", "perencana")
        world.server.fail_next(
            "sendMessage", error_code=502, description="Bad Gateway", chat_id=rina.id
        )
        world.server.block(dodi.id)
        await world.people["kepala"].send_command("/mulai", "TW III 2026")
        await world.idle()
        assert rina.find("Tugas baru") == []
        world.clock.advance(seconds=2)
        await flush(world)
        assert len(rina.find("Tugas baru")) == 1
        async with world.services.db.session() as s:
            dodi_row = (await s.exec(select(Member).where(Member.telegram_id == dodi.id))).one()
            blocked = (
                await s.exec(
                    select(Notification).where(
                        Notification.member_id == dodi_row.id, Notification.template == "task"
                    )
                )
            ).one()
            kinds = [e.kind for e in (await s.exec(select(Event))).all()]
        assert dodi_row.blocked_at is not None and blocked.state == OutboxState.blocked
        assert blocked.attempts == 1 and "member_blocked_bot" in kinds
        await world.people["kepala"].send_command("/status")
        await world.idle()
        assert "memblokir bot" in world.people["kepala"].latest("(kegiatan #1)")["text"]
        assert "Dodi" in world.people["kepala"].latest("memblokir")["text"]


async def test_restart_rebuilds_and_reminds_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        await start_run(world)
        rina = world.people["rina"]
        await world.restart()
        world.clock.advance(hours=2)
        await sweep(world)
        await sweep(world)
        await world.restart()
        await sweep(world)
        assert len(rina.find("Pengingat")) == 1
