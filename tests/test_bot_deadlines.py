"""Reminders and the outbox in chat: RetryAfter, blocked people, restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select
from telegram.ext import Job

from bot.models import Event, Member, Notification, OutboxState
from jobs import JOB_KWARGS
from jobs.deadlines import TIMER
from tests.fakes.world import ADMIN_ID, World, running_bot

WIB = ZoneInfo("Asia/Jakarta")


async def flush(world: World) -> None:
    await world.sender.flush(world.app.bot)
    await world.idle()


async def sweep(world: World) -> None:
    await world.services.deadlines.sweep()
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


async def test_one_broken_row_neither_blocks_the_others_nor_cries_duplicate(
    tmp_path: Path,
) -> None:
    """A row whose template is missing is retried with backoff like a network
    error, then given up (the admins told); the rows after it still go out."""
    async with running_bot(tmp_path) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        async with world.services.db.transaction() as s:
            member = (await s.exec(select(Member).where(Member.telegram_id == rina.id))).one()
            now = world.clock.now()
            broken = Notification(
                key="broken",
                member_id=member.id,
                template="tidak_ada_templatnya",
                context={},
                created_at=now,
                not_before=now,
            )
            s.add(broken)
        await world.people["kepala"].send_command("/mulai", "TW III 2026")
        await world.idle()
        assert len(rina.find("Tugas baru")) == 1  # sent although an older row is broken
        sender = world.sender
        for attempt in range(1, sender.outbox.max_attempts + 1):
            async with world.services.db.session() as s:
                row = (await s.exec(select(Notification).where(Notification.key == "broken"))).one()
            assert row.attempts == attempt and row.sending_since is None
            assert "TemplateNotFound" in (row.last_error or "")
            if attempt < sender.outbox.max_attempts:
                assert row.state == OutboxState.pending and row.not_before > world.clock.now()
            world.clock.advance(seconds=sender.outbox.backoff(attempt))
            await flush(world)
        assert row.state == OutboxState.failed
        async with world.services.db.session() as s:
            kinds = [e.kind for e in (await s.exec(select(Event))).all()]
        assert "possible_duplicate" not in kinds and kinds.count("delivery_failed") == 1
        assert "tidak_ada_templatnya" in admin.latest("gagal terkirim")["text"]


async def test_retry_after_pauses_every_send(tmp_path: Path) -> None:
    """Flood limits are bot-wide: after a 429 no other row is sent either
    until Telegram's wait is over."""
    async with running_bot(tmp_path) as world:
        await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        dodi = await world.join("dodi", 1004, "Dodi", "perencana")
        # Rina's task is queued first (the planners in order of joining).
        world.server.fail_next("sendMessage", error_code=429, retry_after=7, chat_id=rina.id)
        await world.people["kepala"].send_command("/mulai", "TW III 2026")
        await world.idle()
        sends = world.server.calls("sendMessage")
        assert rina.find("Tugas baru") == [] and dodi.find("Tugas baru") == []
        world.clock.advance(seconds=6)
        await flush(world)
        assert world.server.calls("sendMessage") == sends  # nothing tried meanwhile
        world.clock.advance(seconds=1)
        await flush(world)
        assert len(rina.find("Tugas baru")) == 1 and len(dodi.find("Tugas baru")) == 1


async def test_reminder_retried_in_the_evening_waits_for_the_morning(tmp_path: Path) -> None:
    """A 502 at 15:59 and the retry at 21:00: the reminder goes out at the
    next opening, not in the evening."""
    async with running_bot(tmp_path) as world:
        await start_run(world)
        rina = world.people["rina"]
        world.clock.set(datetime(2026, 11, 2, 15, 59, tzinfo=WIB))
        world.server.fail_next(
            "sendMessage", error_code=502, description="Bad Gateway", chat_id=rina.id
        )
        await sweep(world)
        assert rina.find("Pengingat") == []
        world.clock.set(datetime(2026, 11, 2, 21, 0, tzinfo=WIB))
        await flush(world)
        assert rina.find("Pengingat") == []
        world.clock.set(datetime(2026, 11, 3, 7, 30, tzinfo=WIB))
        await flush(world)
        assert len(rina.find("Pengingat")) == 1


async def timer(world: World, after: Job | None = None) -> Job:
    """The armed one-shot deadline timer (arming reads the database in a job
    of its own, at once; this waits for it, not for any deadline)."""
    async with asyncio.timeout(10):
        while True:
            jobs = [
                j
                for j in world.app.job_queue.get_jobs_by_name(TIMER)
                if j.callback.__name__ == "fire" and j is not after and not j.removed
            ]
            if jobs:
                return jobs[-1]
            await asyncio.sleep(0.02)


async def test_timer_is_rebuilt_at_start_and_fires_at_the_due_moment(tmp_path: Path) -> None:
    """The timer path, not a sweep by hand: after a restart the job queue holds
    one timer a minute after the step's due time, when it is late (misfire
    grace and coalescing set);
    running it at that moment reminds, and re-arms for the escalation."""
    async with running_bot(tmp_path) as world:
        await start_run(world)  # step 2 opened 08:00, due 09:00
        await world.restart()
        job = await timer(world)
        assert job.job.misfire_grace_time == JOB_KWARGS["misfire_grace_time"]
        assert job.job.coalesce is JOB_KWARGS["coalesce"]
        wait = (job.next_t - datetime.now(UTC)).total_seconds()
        assert 3660 - 30 < wait <= 3660  # 09:01 on the bot's clock: a minute late
        world.clock.set(datetime(2026, 11, 2, 9, 1, tzinfo=WIB))
        await job.run(world.app)
        await world.idle()
        assert len(world.people["rina"].find("Pengingat")) == 1
        escalation = await timer(world, after=job)
        wait = (escalation.next_t - datetime.now(UTC)).total_seconds()
        assert 3540 - 30 < wait <= 3540  # 10:00: waktu (60 minutes) after due
