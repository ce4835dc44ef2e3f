"""Updates of different chats are handled side by side, one chat's in the
order sent (bot/processor.py): fifty people pressing at once are all
answered, and lanes go when their chat is idle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from telegram import Update

from bot.botapi import Person as FakeUser
from bot.clock import FakeClock
from bot.db import Database
from bot.inbox import Inbox
from bot.office import DEFAULT_UNITS
from bot.processor import ChatLanes
from bot.verbs import Verb, encode
from tests.fakes.world import running_bot


def message(update_id: int, chat_id: int) -> Update:
    update = Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "X"},
                "text": "halo",
            },
        },
        None,
    )
    assert update is not None
    return update


async def test_one_chat_waits_for_itself_only(db: Database, clock: FakeClock) -> None:
    lanes = ChatLanes(Inbox(db, clock), workers=4)
    seen: list[str] = []
    first_may_end = asyncio.Event()

    async def handle(name: str, wait: asyncio.Event | None = None) -> None:
        seen.append(f"{name} begins")
        if wait is not None:
            await wait.wait()
        seen.append(f"{name} ends")

    a1 = asyncio.create_task(lanes.process_update(message(1, 100), handle("a1", first_may_end)))
    a2 = asyncio.create_task(lanes.process_update(message(2, 100), handle("a2")))
    b1 = asyncio.create_task(lanes.process_update(message(3, 200), handle("b1")))
    async with asyncio.timeout(10):
        await b1  # another chat is not held up by a1
        assert seen == ["a1 begins", "b1 begins", "b1 ends"]
        assert lanes.lanes == 1  # chat 200's lane went with its last update
        first_may_end.set()
        await asyncio.gather(a1, a2)
    assert seen[3:] == ["a1 ends", "a2 begins", "a2 ends"]  # chat 100 in order
    assert lanes.lanes == 0


async def test_fifty_people_pressing_at_once_are_all_answered(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        await world.join("rina", 1003, "Rina", "perencana")
        await kepala.send_command("/mulai", "TW IV 2026")
        await world.idle()
        members = world.services.members
        people: list[FakeUser] = []
        for i in range(50):
            unit = DEFAULT_UNITS[i % len(DEFAULT_UNITS)]
            token = await members.create_invitation("anggota_tim", unit=unit)
            await members.redeem(token, telegram_id=3000 + i, name=f"Staf {i}")
            people.append(world.user(f"staf{i}", 3000 + i, f"Staf {i}"))
        await world.idle()
        for person in people:
            await person.send_command("/status")
        await world.idle()
        glances = [person.latest("TW IV 2026") for person in people]
        run_id = (await world.services.engine.queries.runs())[0].id

        # One person's own updates meanwhile: answered in the order sent.
        commands = ["/tugas", "/status", "/bantuan"]
        alone: list[str] = []
        for command in commands:
            await kepala.send_command(command)
            await world.idle()
            alone.append(kepala.last["text"])
        before = len(kepala.messages)

        data = encode(Verb.stat, run_id)
        queries: list[Any] = []
        for i, (person, glance) in enumerate(zip(people, glances, strict=True)):
            queries.append(await person.press_data(glance, data))
            if i % 20 == 0:
                await kepala.send_command(commands[i // 20])
        await world.idle(limit=60)
        answered = [q for q in queries if world.server.callback_answers.get(q) is not None]
        assert len(answered) == 50
        assert [m["text"] for m in kepala.messages[before:]] == alone
        shown = [person.messages[-1]["text"] for person in people]
        assert all("TW IV 2026" in text for text in shown)
        # (their command menus could not be set before they wrote to the bot)
        assert [e for e in world.server.errors() if e.method != "setMyCommands"] == []
        processor = world.app.update_processor
        assert isinstance(processor, ChatLanes) and processor.lanes == 0
