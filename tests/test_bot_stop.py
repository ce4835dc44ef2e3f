"""Stopping the bot: what is running finishes, nothing new starts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from telegram.ext import JobQueue

from bot.chat import SopContext
from tests.fakes.world import running_bot


async def test_stopping_finishes_the_running_job_and_starts_no_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python-telegram-bot's stop waits for the jobs running when it begins to
    wait, then APScheduler's shutdown cancels whatever it finds running: a
    job that fell due in between (the outbox tick, a deadline) was cancelled
    half way and logged with a traceback. Seen in CI, on a restart after
    SIGKILL."""
    held = asyncio.Event()
    release = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    async def job(context: SopContext) -> None:
        assert context.job is not None
        started.append(str(context.job.name))
        held.set()
        await release.wait()
        finished.append(str(context.job.name))

    waiting = asyncio.Event()
    stop_jobs = JobQueue.stop

    async def stop_noting(self: JobQueue[SopContext], wait: bool = True) -> None:
        waiting.set()  # python-telegram-bot's stop waits for running jobs from here
        await stop_jobs(self, wait=wait)

    monkeypatch.setattr(JobQueue, "stop", stop_noting)
    async with running_bot(tmp_path) as world:
        jobs = world.app.job_queue
        assert jobs is not None
        try:
            jobs.run_once(job, when=0, name="running")
            await asyncio.wait_for(held.wait(), 10)
            with caplog.at_level(logging.ERROR, logger="apscheduler"):
                stopping = asyncio.create_task(world.stop())
                await asyncio.wait_for(waiting.wait(), 10)
                jobs.run_once(job, when=0, name="late")  # falls due while stopping
                for _ in range(20):  # the scheduler's wake-up takes a few loop turns
                    await asyncio.sleep(0)
                release.set()
                await asyncio.wait_for(stopping, 30)
        finally:
            release.set()  # a failed check must not leave the bot's stop waiting
    assert started == ["running"]
    assert finished == ["running"]
    assert not [r for r in caplog.records if r.name.startswith("apscheduler")]


async def test_a_start_that_cannot_reach_telegram_closes_its_connections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`sopbot run` with the Bot API unreachable says so and exits; the
    HTTP clients it opened are closed, not left for the garbage collector
    ("Unclosed client session"): python-telegram-bot closes them only for
    a bot that started."""
    import gc
    import socket

    from telegram.error import NetworkError

    from bot.app import build_application, serve
    from bot.services import Services
    from bot.settings import Settings
    from tests.fakes.world import ADMIN_ID, migrated_copy

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await migrated_copy(tmp_path / "bot.db")
    settings = Settings(
        _env_file=None,
        bot_token="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
        bot_api_base_url=f"http://127.0.0.1:{port}/bot",
        bot_api_file_url=f"http://127.0.0.1:{port}/file/bot",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        admin_telegram_ids=[ADMIN_ID],
    )
    app = build_application(Services.build(settings))
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(NetworkError):
            await serve(app)
        gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_serving_keeps_what_starting_made_out_of_the_collector(tmp_path: Path) -> None:
    """`sopbot run` freezes the objects its start made (bot/app.py,
    keep_startup_objects): full collections walked about 150,000 of them
    under load, each holding every update in flight over 100 ms. Stopped as
    Ctrl+C stops it."""
    import gc
    import signal

    from bot.app import build_application, serve
    from bot.botapi import BotApiServer
    from bot.services import Services
    from tests.fakes.world import bot_settings, migrated_copy

    await migrated_copy(tmp_path / "bot.db")
    async with BotApiServer() as server:
        settings = bot_settings(server, tmp_path, audit_seal_interval=0)
        app = build_application(Services.build(settings))
        gc.unfreeze()
        serving = asyncio.create_task(serve(app))
        try:
            for _ in range(1000):
                if server.calls("getUpdates") or serving.done():
                    break
                await asyncio.sleep(0.01)
            assert server.calls("getUpdates")
            assert gc.get_freeze_count() > 10_000
        finally:
            if not serving.done():
                signal.raise_signal(signal.SIGINT)  # the handler serve installed
            await asyncio.wait_for(serving, 30)
            gc.unfreeze()  # the rest of the test process collects as before
