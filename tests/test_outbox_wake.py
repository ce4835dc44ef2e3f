"""The sender is woken by the commits that owe a message (bot/outbox.py
`Outbox.on_owed`, jobs/outbox.py `OutboxSender.wake`), not kicked after
every update: an update that queued nothing costs the sender nothing, a
job's or a sweep's message goes at once, and what a person's own command
queues goes after the bot's answer to that command."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.world import running_bot


async def test_the_answer_to_a_command_comes_before_what_it_queued(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.idle()
        # The answer to /mulai hangs on its way to Telegram: the message the
        # same command queued for the Kepala must wait for it.
        hold = world.server.hold(
            "sendMessage", deliver=True, match=lambda p: "dimulai" in str(p.get("text"))
        )
        before = len(kepala.messages)
        await kepala.send_command("/mulai", "TW IV 2026")
        async with asyncio.timeout(10):
            await hold.arrived.wait()
        # Neither woken nor ticked meanwhile: the repeating job may run now,
        # and must leave the Kepala's warning for after the answer.
        await world.sender.flush(world.app.bot)
        assert [m for m in kepala.messages[before:] if "dimulai" not in m.get("text", "")] == []
        hold.release.set()
        await world.idle()
        texts = kepala.texts()[before:]
        started = next(i for i, t in enumerate(texts) if "dimulai" in t)
        # No planner yet: the command also queued a warning for the Kepala.
        warning = next(i for i, t in enumerate(texts) if t.startswith("⚠️ Langkah 2"))
        assert started < warning, texts


async def test_a_commit_outside_any_update_wakes_the_sender(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.idle()
        assert not world.sender.busy
        # The engine called directly, as a job or the training room does.
        await world.services.engine.runs.start(await world.member_id(kepala), "TW IV 2026")
        assert world.sender.busy  # woken by the commit, not by the next tick
        await world.idle()
        assert kepala.latest("Langkah 2 belum ada pelaksana")


async def test_an_update_that_queues_nothing_does_not_wake_the_sender(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.idle()
        woken: list[bool] = []
        world.services.outbox.on_owed(lambda owed: woken.append(bool(owed)))
        await kepala.send_command("/status")
        await world.idle()
        assert kepala.latest("Tidak ada kegiatan yang sedang berjalan")
        assert woken == []
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        assert woken and all(woken)  # the run's first tasks were owed, to someone
