"""The real bot, running against the fake Bot API server, with people."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.app import build_application, start
from bot.app import stop as stop_bot
from bot.botapi import BotApiServer as FakeBotApi
from bot.botapi import Person as FakeUser
from bot.chat import SopApp
from bot.clock import FakeClock
from bot.db import Database
from bot.intake import Intake
from bot.migrate import upgrade
from bot.services import Services
from bot.settings import Settings
from jobs.outbox import OutboxSender

ADMIN_ID = 9999
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class World:
    server: FakeBotApi
    app: SopApp
    services: Services
    clock: FakeClock
    intake: Intake | None = None
    people: dict[str, FakeUser] = field(default_factory=dict)

    @property
    def sender(self) -> OutboxSender:
        """The Application's outbox sender (BotData.sender)."""
        sender = self.app.bot_data.sender
        assert sender is not None, "the Application was built with its jobs"
        return sender

    async def idle(self, limit: float = 15.0) -> None:
        """Until every pushed update is handled and every due message sent."""
        deadline = time.monotonic() + limit
        while True:
            await self.server.wait_idle(quiet=0.05, limit=limit)
            sender = self.app.bot_data.sender
            busy = (
                not self.app.update_queue.empty()
                or (self.intake is not None and self.intake.busy)
                or (sender is not None and (sender.busy or await sender.outbox.due()))
            )
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("bot still busy")
            await asyncio.sleep(0.02)

    def user(self, key: str, user_id: int, first_name: str, **kw: str) -> FakeUser:
        person = FakeUser(self.server, user_id, first_name, **kw)
        self.people[key] = person
        return person

    async def invite(self, role: str, unit: str | None = None) -> str:
        return await self.services.members.create_invitation(role, unit=unit)

    async def join(
        self, key: str, user_id: int, name: str, role: str, unit: str | None = None
    ) -> FakeUser:
        """The person taps an invitation link: /start <token>."""
        person = self.user(key, user_id, name)
        await person.send_command("/start", await self.invite(role, unit))
        await self.idle()
        return person

    async def member_id(self, person: FakeUser) -> int:
        """The member id of an enrolled, active person."""
        member = await self.services.members.by_telegram(person.id)
        assert member is not None, f"{person.first_name} is not an active member"
        return member.id

    async def to_collection(self, *, start: bool = True) -> None:
        """Bring a new run (or, with start=False, the run just started) to
        step 6 through the engine (the chat parts are tested elsewhere):
        needs people with keys kepala, sekretaris, rina."""
        from datetime import timedelta

        from bot.views import IncomingFile
        from tests.support import FORM, XLSX

        e = self.services.engine
        ids = {k: await self.member_id(self.people[k]) for k in ("kepala", "sekretaris", "rina")}
        if start:
            await e.runs.start(ids["kepala"], "TW III")
        [form] = await e.queries.tasks(ids["rina"])
        await e.collection.upload(
            ids["rina"], form.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
        )
        await e.steps.complete(ids["rina"], form.run_step_id)
        [send] = await e.queries.tasks(ids["rina"])
        await e.steps.complete(ids["rina"], send.run_step_id)
        [invite] = await e.queries.tasks(ids["sekretaris"])
        await e.steps.schedule_meeting(
            ids["sekretaris"], invite.run_step_id, self.clock.now() + timedelta(hours=2), "Aula"
        )
        [meeting] = await e.queries.tasks(ids["kepala"])
        self.clock.advance(hours=2)  # the meeting has started
        await e.steps.complete(ids["kepala"], meeting.run_step_id)
        await self.idle()

    async def restart(self) -> None:
        """Stop the Application and start a new one on the same database,
        as after a process restart."""
        await self.stop()
        self.services = Services.build(self.services.settings, clock=self.clock)
        self.app = build_application(self.services)
        self.intake = await start_app(self.app)

    async def stop(self) -> None:
        await stop_bot(self.app, self.intake)
        self.intake = None


async def start_app(app: SopApp) -> Intake:
    """Start the Application polling the fake server (a short long poll)."""
    return await start(app, poll_timeout=1)


_migrated: list[Path] = []  # the test process's migrated empty SQLite database


async def migrated_copy(path: Path) -> None:
    """An empty SQLite database at `path`, as `sopbot db upgrade` leaves it:
    a copy of one migrated once per test process. Migrating took about
    0.3 s a world, several hundred times a run; the migrations themselves
    are tested from scratch in tests/test_migrations*.py."""
    if not _migrated:
        folder = Path(tempfile.mkdtemp(prefix="sopbot-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        db = Database(f"sqlite+aiosqlite:///{folder / 'migrated.db'}")
        await upgrade(db)
        await db.dispose()  # the last connection closed: the WAL is in the file
        _migrated.append(folder / "migrated.db")
    shutil.copyfile(_migrated[0], path)


def bot_settings(server: FakeBotApi, tmp_path: Path, **settings: object) -> Settings:
    """The bot's settings against the fake server: its files and its SQLite
    database in `tmp_path`, ADMIN_ID its admin; `settings` change any."""
    values: dict[str, object] = {
        "bot_token": server.token,
        "bot_username": server.username,
        "bot_api_base_url": server.base_url,
        "bot_api_file_url": server.base_file_url,
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "admin_telegram_ids": [ADMIN_ID],
    }
    return Settings(_env_file=None, **{**values, **settings})  # type: ignore[arg-type]


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    start: datetime | None = None,
    **settings: object,
) -> AsyncIterator[World]:
    """Fake server + migrated database + the real Application, polling."""
    clock = FakeClock(start or datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Mon 08:00 WIB
    # LOCAL_BOT_API: the fake server behaves as a local Bot API server.
    local_dir = tmp_path / "bot-api-server" if settings.get("local_bot_api") else None
    async with FakeBotApi(now=lambda: clock.now().timestamp(), local_dir=local_dir) as server:
        # No audit seal job unless a test asks for it (AUDIT_SEAL_INTERVAL):
        # a long test would otherwise meet a stray quiet seal line to the admin.
        settings.setdefault("audit_seal_interval", 0)
        # The fake server has no flood limit unless a test sets one (and then
        # the real pace, 29 a second): no test waits 34 ms between messages.
        settings.setdefault("messages_per_second", 10_000)
        if database_url is not None:
            settings["database_url"] = database_url
        config = bot_settings(server, tmp_path, **settings)
        if database_url is None:
            await migrated_copy(tmp_path / "bot.db")
        else:
            db = Database(config.db_url)
            await upgrade(db)
            await db.dispose()
        services = Services.build(config, clock=clock)
        app = build_application(services)
        world = World(server, app, services, clock)
        world.intake = await start_app(app)
        try:
            yield world
        finally:
            await world.stop()


async def spawn_bot(server: FakeBotApi, tmp_path: Path, **env: str) -> asyncio.subprocess.Process:
    """`sopbot run` as a separate process against the fake server."""
    variables = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": server.token,
        "BOT_API_BASE_URL": server.base_url,
        "BOT_API_FILE_URL": server.base_file_url,
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": os.environ.get("TEST_BOT_LOG", "CRITICAL"),
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        cwd=tmp_path,
        env=variables,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
