"""The bot as a separate process, killed with SIGKILL at the worst moments."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.botapi import BotApiServer as FakeBotApi
from bot.clock import FakeClock
from bot.migrate import upgrade
from bot.models import Event, Notification, OutboxState
from bot.services import Services
from bot.settings import Settings
from tests.fakes.world import bot_settings, spawn_bot

WIB = ZoneInfo("Asia/Jakarta")
RINA = 1003

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


async def prepare(server: FakeBotApi, tmp_path: Path) -> Settings:
    """A run whose step 2 (60 min) opened Monday 08:00 and is due 09:00."""
    config = bot_settings(server, tmp_path)
    services = Services.build(config, clock=FakeClock(datetime(2026, 11, 2, 8, 0, tzinfo=WIB)))
    await upgrade(services.db)
    await services.start()
    m = services.members
    kepala, _ = await m.redeem(
        await m.create_invitation("kepala_badan"), telegram_id=1001, name="Kepala"
    )
    await m.redeem(await m.create_invitation("perencana"), telegram_id=RINA, name="Rina")
    await services.engine.runs.start(kepala.id, "TW III 2026")
    await services.close()
    return config


async def spawn(
    server: FakeBotApi, config: Settings, tmp_path: Path, clock_start: datetime
) -> asyncio.subprocess.Process:
    return await spawn_bot(
        server,
        tmp_path,
        DATABASE_URL=config.database_url,
        DATA_DIR=str(config.data_dir),
        CLOCK_START=clock_start.isoformat(),
    )


def reminders(server: FakeBotApi) -> list[dict[str, object]]:
    return [m for m in server.messages(RINA) if "Pengingat" in str(m.get("text"))]


async def until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait for another process to do something (not a sleep through time)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 (the other side is a process)
            await asyncio.sleep(0.05)


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.terminate()
    _, err = await proc.communicate()
    return err


@pytest.mark.parametrize("delivered", [False, True], ids=["before-send", "after-send"])
async def test_sigkill_around_the_reminder(tmp_path: Path, delivered: bool) -> None:
    async with FakeBotApi() as server:
        config = await prepare(server, tmp_path)
        hold = server.hold(
            "sendMessage",
            deliver=delivered,
            match=lambda params: "Pengingat" in str(params.get("text")),
        )
        first = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 10, 0, tzinfo=WIB))
        try:
            async with asyncio.timeout(60):
                await hold.arrived.wait()
        finally:
            first.kill()  # SIGKILL: no shutdown, no cleanup
            await first.communicate()
        assert len(reminders(server)) == (1 if delivered else 0)

        second = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 10, 1, tzinfo=WIB))
        try:
            await until(lambda: len(reminders(server)) == (2 if delivered else 1))
            await asyncio.sleep(1.5)  # a further sweep would show a second copy here
        finally:
            err = await stop(second)
        assert b"Traceback" not in err, err.decode()[-2000:]

        # Before the send: exactly one reminder. After it: one duplicate at most.
        assert len(reminders(server)) == (2 if delivered else 1)
        services = Services.build(config)
        async with services.db.session() as s:
            rows = (
                await s.exec(select(Notification).where(Notification.template == "reminder"))
            ).all()
            events = (await s.exec(select(Event))).all()
        await services.close()
        assert [(r.state, r.attempts) for r in rows] == [(OutboxState.sent, 2)]
        assert [e.kind for e in events].count("reminder") == 1
        duplicates = [e for e in events if e.kind == "possible_duplicate"]
        assert len(duplicates) == 1 and duplicates[0].details["key"] == rows[0].key


async def test_sigkill_at_closing_time_and_evening_restart_waits_for_morning(
    tmp_path: Path,
) -> None:
    """Killed just before closing (15:57) while the reminder was on its way,
    restarted at 21:00:
    the reminder is deferred to the next opening, not sent in the evening,
    and the interrupted send stays on record for the duplicate check."""
    async with FakeBotApi() as server:
        config = await prepare(server, tmp_path)
        hold = server.hold(
            "sendMessage",
            deliver=False,
            match=lambda params: "Pengingat" in str(params.get("text")),
        )
        first = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 15, 57, tzinfo=WIB))
        try:
            async with asyncio.timeout(60):
                await hold.arrived.wait()
        finally:
            first.kill()
            await first.communicate()

        services = Services.build(config)

        async def reminder_row() -> Notification:
            async with services.db.session() as s:
                return (
                    await s.exec(select(Notification).where(Notification.template == "reminder"))
                ).one()

        morning = datetime(2026, 11, 3, 7, 30, tzinfo=WIB)
        second = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 21, 0, tzinfo=WIB))
        try:
            async with asyncio.timeout(30):
                while (await reminder_row()).not_before != morning:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            err = await stop(second)
        assert b"Traceback" not in err, err.decode()[-2000:]
        row = await reminder_row()
        await services.close()
        assert reminders(server) == []
        assert row.state == OutboxState.pending and row.sending_since is not None
        assert row.attempts == 1


async def test_sigkill_after_a_press_was_confirmed_to_telegram(tmp_path: Path) -> None:
    """The bot fetched Rina's press and asked for the next batch, which tells
    Telegram the press arrived (Telegram never sends it again); killed right
    then, restarted: the press is handled exactly once, from the inbox."""
    from bot.botapi import Person as FakeUser
    from bot.models import InboxUpdate, RunStep, StepState
    from bot.views import IncomingFile
    from tests.support import FORM, XLSX

    async with FakeBotApi() as server:
        config = await prepare(server, tmp_path)
        services = Services.build(config, clock=FakeClock(datetime(2026, 11, 2, 8, 10, tzinfo=WIB)))
        member = await services.members.by_telegram(RINA)
        assert member is not None
        rina_id = member.id
        [form] = await services.engine.queries.tasks(rina_id)
        await services.engine.collection.upload(
            rina_id, form.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
        )
        await services.close()
        rina = FakeUser(server, RINA, "Rina")

        first = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 8, 20, tzinfo=WIB))
        try:
            await until(lambda: bool(rina.find("Tugas baru")))
            hold = server.hold_updates()
            query_id = await rina.press(rina.latest("Tugas baru"), "Selesai")
            async with asyncio.timeout(30):
                await hold.arrived.wait()
        finally:
            first.kill()  # SIGKILL the moment the press is confirmed to Telegram
            await first.communicate()
        answered_before = query_id in server.callback_answers

        services = Services.build(config)

        async def press_row() -> InboxUpdate | None:
            async with services.db.session() as s:
                rows = (await s.exec(select(InboxUpdate))).all()
            return next((r for r in rows if r.done_at is not None or r.failed_at), None)

        second = await spawn(server, config, tmp_path, datetime(2026, 11, 2, 8, 21, tzinfo=WIB))
        try:
            async with asyncio.timeout(30):
                while (row := await press_row()) is None:  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.05)
            if row.restarts:  # handled by the second process: it answers
                await until(lambda: query_id in server.callback_answers)
        finally:
            err = await stop(second)
        assert b"Traceback" not in err, err.decode()[-2000:]
        async with services.db.session() as s:
            done = (await s.exec(select(Event).where(Event.kind == "step_done"))).all()
            step = await s.get(RunStep, form.run_step_id)
            rows = (await s.exec(select(InboxUpdate))).all()
        await services.close()
        assert step is not None and step.state == StepState.done
        assert [e.details.get("run_step_id") for e in done].count(form.run_step_id) == 1
        [row] = rows  # the one press, stored once; Telegram sent it once
        assert row.done_at is not None and row.failed_at is None and row.duplicates == 0
        answers = server.calls("answerCallbackQuery")
        assert len(answers) == 1 and answers[0]["callback_query_id"] == query_id
        # Either the first process finished it before the kill, or the second
        # took it from the inbox (never both).
        assert row.restarts == (0 if answered_before else 1)
