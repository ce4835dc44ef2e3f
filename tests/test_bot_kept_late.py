"""A message with buttons a handler sends itself (a `/tugas` line, a unit's
file shown again from "Lihat berkas unit", the answer to a note typed under
a task) is kept as a sent row only once it has gone out. A colleague who
settles its step or file meanwhile, in another chat's lane, does not see
it: the line is caught up once kept (`Settling.keep`) and loses its
buttons like the step's task messages, with the same line under it. The
sends are held on the fake Bot API server while the colleague acts, so the
race happens every time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.botapi import Person as FakeUser
from bot.botapi.server import Hold
from bot.models import (
    Assignment,
    AssignmentState,
    Notification,
    OutboxState,
    ReviewState,
    RunStep,
    StepState,
    StoredFile,
)
from tests.fakes.world import World, running_bot
from tests.support import FORM, XLSX, workbook
from tests.test_bot_collection import UNITS, office
from tests.test_bot_walkthrough import enrol_everyone, with_buttons


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def to(person: FakeUser, words: str) -> Callable[[dict[str, Any]], bool]:
    """A send to this person, with buttons, whose text or caption has `words`."""

    def match(params: dict[str, Any]) -> bool:
        said = str(params.get("text") or params.get("caption") or "")
        return (
            str(params.get("chat_id")) == str(person.id)
            and words in said
            and bool(params.get("reply_markup"))
        )

    return match


async def until(world: World, check: Callable[[], Any], limit: float = 10.0) -> None:
    """Until the bot has done what `check` looks for in the database (the
    held send keeps the world from being idle, so it cannot be awaited)."""
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


def held_message(person: FakeUser, before: set[int], words: str) -> dict[str, Any]:
    """The one new message (since `before`) whose text or caption has `words`."""
    [found] = [m for m in person.find(words) if m["message_id"] not in before]
    return found


async def release(world: World, hold: Hold) -> None:
    hold.release.set()
    await world.idle()


async def form_sent_at_step_2(world: World) -> dict[str, FakeUser]:
    """Everyone enrolled, a run started, and Rina's form sent at step 2
    (still open: Dodi's Selesai finishes it)."""
    p = await enrol_everyone(world)
    rina = p["rina"]
    await p["kepala"].send_command("/mulai", "TW III | Mohon segera")
    await world.idle()
    await rina.send_document(FORM, FORM.name, XLSX, reply_to=with_buttons(rina, "Langkah 2"))
    await world.idle()
    return p


async def finish_step_2_while_held(world: World, dodi: FakeUser, hold: Hold) -> None:
    """Dodi finishes step 2 while a send is held; once it is done, the send
    is let go."""
    await dodi.press(with_buttons(dodi, "Langkah 2"), "Selesai")

    async def step_2_done() -> bool:
        async with world.services.db.session() as s:
            rs = (await s.exec(select(RunStep).where(RunStep.number == 2))).one()
        return rs.state == StepState.done

    await until(world, step_2_done)
    await release(world, hold)


async def test_a_tugas_line_sent_while_the_step_is_finished_loses_its_buttons(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        p = await form_sent_at_step_2(world)
        rina, dodi = p["rina"], p["dodi"]
        world.clock.advance(minutes=5)  # 08:05

        before = {m["message_id"] for m in rina.messages}
        hold = world.server.hold("sendMessage", deliver=True, match=to(rina, "Langkah 2:"))
        await rina.send_command("/tugas")
        async with asyncio.timeout(10):
            await hold.arrived.wait()
        # Rina's line is in her chat, the bot has not heard back: Dodi
        # finishes the step meanwhile.
        await finish_step_2_while_held(world, dodi, hold)

        line = held_message(rina, before, "Langkah 2:")
        assert world.server.shown_markups()[(rina.id, line["message_id"])] is None
        assert buttons(line) == []
        # The same line as on the step's task messages.
        done = "✅ Diselesaikan oleh Dodi, Senin, 2 November 2026 08:05 WIB"
        assert done in line["text"], line["text"]
        # The run went on as it would have: step 2 by Dodi, step 3 open.
        async with world.services.db.session() as s:
            steps = {rs.number: rs for rs in (await s.exec(select(RunStep))).all()}
            kept = (
                await s.exec(select(Notification).where(Notification.template == "task_line"))
            ).one()
            edits = (
                await s.exec(select(Notification).where(Notification.edits_id == kept.id))
            ).all()
        assert steps[2].done_by == await world.member_id(dodi) and steps[3].state == StepState.open
        assert [(e.template, e.state) for e in edits] == [("settled", OutboxState.sent)]
        assert world.server.errors() == []
        assert not [b for _chat, m, b in world.server.live_buttons() if "Langkah 2:" in m["text"]]


async def test_a_file_shown_again_while_a_colleague_accepts_it_loses_its_buttons(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world)
        await world.to_collection()
        rina, dodi = p["rina"], p["dodi"]
        await p["unit1"].send_document(workbook(UNITS[0], 1), "kinerja.xlsx", XLSX)
        await world.idle()
        review = with_buttons(rina, "Berkas masuk dari Sekretariat")  # Rina is on duty

        before = {m["message_id"] for m in dodi.messages}
        hold = world.server.hold("sendDocument", deliver=True, match=to(dodi, "kinerja.xlsx"))
        await dodi.press(with_buttons(dodi, "Pengumpulan dimulai"), "Lihat berkas unit")
        async with asyncio.timeout(10):
            await hold.arrived.wait()
        await rina.press(review, "Terima")

        async def accepted() -> bool:
            async with world.services.db.session() as s:
                f = (await s.exec(select(StoredFile).where(StoredFile.unit_id != None))).one()  # noqa: E711
            return f.review_state == ReviewState.accepted

        await until(world, accepted)
        await release(world, hold)

        [copy] = [m for m in dodi.documents() if m["message_id"] not in before]
        assert world.server.shown_markups()[(dodi.id, copy["message_id"])] is None
        assert "diterima oleh Rina" in copy["caption"], copy["caption"]
        assert "diterima oleh Rina" in rina.latest("Berkas masuk dari Sekretariat")["caption"]
        async with world.services.db.session() as s:
            a = (
                await s.exec(select(Assignment).where(Assignment.state == AssignmentState.accepted))
            ).all()
        assert len(a) == 1
        assert world.server.errors() == []
        assert not [
            b
            for _chat, m, b in world.server.live_buttons()
            if "kinerja.xlsx" in (m.get("caption") or "")
        ]


async def test_a_kept_note_loses_its_buttons_when_the_step_is_finished(tmp_path: Path) -> None:
    """A note typed under a task is answered with the task's buttons (press
    one to finish with the note): when a colleague finishes the step, before
    or while that answer is on its way, its buttons go too."""
    async with running_bot(tmp_path) as world:
        p = await form_sent_at_step_2(world)
        rina, dodi = p["rina"], p["dodi"]
        task = with_buttons(rina, "Langkah 2")

        # Kept first, then the step finished: the settling finds it.
        await rina.send_text("Sudah dicek", task)
        await world.idle()
        first = with_buttons(rina, "Catatan untuk langkah 2 disimpan")

        # The next answer held on its way while Dodi finishes the step.
        before = {m["message_id"] for m in rina.messages}
        hold = world.server.hold(
            "sendMessage", deliver=True, match=to(rina, "Catatan untuk langkah 2 disimpan")
        )
        await rina.send_text("Format sudah final", task)
        async with asyncio.timeout(10):
            await hold.arrived.wait()
        await finish_step_2_while_held(world, dodi, hold)

        second = held_message(rina, before, "Format sudah final")
        shown = world.server.shown_markups()
        assert shown[(rina.id, first["message_id"])] is None
        assert shown[(rina.id, second["message_id"])] is None
        assert "Diselesaikan oleh Dodi" in second["text"], second["text"]
        assert world.server.errors() == []
