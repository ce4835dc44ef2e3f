"""`Settling.keep`, the engine's half of a message a handler kept
late (tests/test_bot_kept_late.py has the race itself): each reason a kept
message's buttons no longer act gives the line the settling would have
given, from the columns; a message whose buttons still act is left alone,
and a second look queues nothing more."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.models import Notification, StoredFile
from bot.outbox import SentMessage
from bot.texts import Texts
from bot.views import IncomingFile, Task
from tests.support import FORM, XLSX, Office, to_collection, workbook

_ids = iter(range(100, 10_000))


def task_line(office: Office, who: str, task: Task) -> SentMessage:
    """A /tugas line for `task`, read before what follows (kept by `keep`)."""
    message_id = next(_ids)
    return SentMessage.about(
        message_id,
        task,
        key=f"task_line:{office.id(who)}:{message_id}",
        member_id=office.id(who),
        template="task_line",
        context={},
    )


async def shown_copy(office: Office, who: str, file_id: int) -> SentMessage:
    """A unit's file shown again for review ("Lihat berkas unit")."""
    message_id = next(_ids)
    async with office.db.session() as s:
        f = await s.get(StoredFile, file_id)
    assert f is not None
    return SentMessage.about(
        message_id,
        f,
        key=f"shown:{file_id}:{office.id(who)}:{message_id}",
        member_id=office.id(who),
        template="review_caption",
        context={},
        file_id=f.id,
    )


async def settled(office: Office, kept: SentMessage) -> dict[str, Any] | None:
    """The settled line queued for the kept message, if any."""
    async with office.db.session() as s:
        row = (await s.exec(select(Notification).where(Notification.key == kept.key))).one()
        edits = (await s.exec(select(Notification).where(Notification.edits_id == row.id))).all()
    assert len(edits) <= 1
    return edits[0].context if edits else None


def line(context: dict[str, Any]) -> str:
    return Texts().render("settled", **context)


async def task_of(office: Office, who: str, number: int) -> Task:
    return next(t for t in await office.engine.queries.tasks(office.id(who)) if t.number == number)


async def test_a_step_finished_or_handed_over_meanwhile(office: Office) -> None:
    e, p, retire = office.engine, office.id, office.engine.keep
    await e.runs.start(p("kepala"), "TW IV 2026")
    two = await task_of(office, "perencana2", 2)
    await e.collection.upload(
        p("perencana"), two.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    office.clock.advance(minutes=5)
    await e.steps.complete(p("perencana"), two.run_step_id)
    late = task_line(office, "perencana2", two)
    three = await task_of(office, "perencana2", 3)
    live = task_line(office, "perencana2", three)
    assert await retire([late, live]) == 1
    done = await settled(office, late)
    assert done is not None and done["kind"] == "done" and done["by"] == "Perencana Satu"
    assert line(done).startswith(
        "✅ Diselesaikan oleh Perencana Satu, Senin, 2 November 2026 08:05"
    )
    assert await settled(office, live) is None
    assert await retire([late, live]) == 0  # queued once

    # Step 3 handed to the other planner: the first one's line goes.
    mine = await task_of(office, "perencana", 3)
    office.clock.advance(minutes=5)
    await e.delegation.reassign(p("perencana"), mine.assignment_id or 0, p("perencana2"))
    old = task_line(office, "perencana", mine)
    theirs = task_line(office, "perencana2", mine)
    assert await retire([old, theirs]) == 1
    handed = await settled(office, old)
    assert handed is not None and await settled(office, theirs) is None
    assert line(handed).startswith(
        "↪️ Dilimpahkan kepada Perencana Dua oleh Perencana Satu, Senin, 2 November 2026 08:10"
    )


async def test_a_units_file_decided_or_replaced_meanwhile_and_the_run_stopped(
    office: Office,
) -> None:
    e, p, retire = office.engine, office.id, office.engine.keep
    run_id = await to_collection(office)
    one, two, three = [await task_of(office, f"unit{i}", 6) for i in (1, 2, 3)]
    got1 = await e.collection.upload(
        p("unit1"), one.run_step_id, IncomingFile(workbook("Sekretariat"), "a.xlsx", XLSX)
    )
    copy1 = got1.file.id or 0
    await e.collection.review(p("perencana"), copy1, accept=True)
    unit_line = task_line(office, "unit1", one)
    shown1 = await shown_copy(office, "perencana2", copy1)

    unit2 = "Bidang Ideologi dan Wawasan Kebangsaan"
    v1 = await e.collection.upload(
        p("unit2"), two.run_step_id, IncomingFile(workbook(unit2, 1), "b.xlsx", XLSX)
    )
    delivered = task_line(office, "unit2", two)  # may still send a new version
    v2 = await e.collection.upload(
        p("unit2"), two.run_step_id, IncomingFile(workbook(unit2, 2), "b2.xlsx", XLSX)
    )
    shown_v1 = await shown_copy(office, "perencana2", v1.file.id or 0)
    await e.collection.review(p("perencana"), v2.file.id or 0, accept=False, note="Kurang")
    shown_v2 = await shown_copy(office, "perencana2", v2.file.id or 0)

    assert await retire([unit_line, shown1, delivered, shown_v1, shown_v2]) == 4
    kept = (unit_line, shown1, shown_v1, shown_v2)
    contexts = {k.key: await settled(office, k) for k in kept}
    said = {k: line(c) for k, c in contexts.items() if c is not None}
    assert said[unit_line.key].startswith("✅ Berkas unit ini diterima oleh Perencana Satu")
    assert said[shown1.key].startswith("✅ Berkas unit ini diterima oleh Perencana Satu")
    assert said[shown_v1.key].startswith("🔁 Berkas ini diganti versi baru oleh Staf 2")
    assert said[shown_v2.key].startswith("↩️ Berkas unit ini dikembalikan oleh Perencana Satu")
    assert await settled(office, delivered) is None

    # The run stopped: every line of it goes, whoever stopped it.
    await e.runs.cancel(p("kepala"), run_id, "Dibatalkan")
    stopped = task_line(office, "unit3", three)
    assert await retire([stopped, delivered]) == 1
    context = await settled(office, stopped)
    assert context is not None and context["kind"] == "cancelled"
    # Who stopped it is a column of the run (cancelled_by), as who closed a unit.
    assert line(context).startswith("🚫 Kegiatan dihentikan oleh Drs. Kepala, ")
    # A line kept before the run stopped was the cancellation's to settle.
    before = await settled(office, delivered)
    assert before is not None and line(before).startswith("🚫 Kegiatan dihentikan oleh Drs. Kepala")


async def test_a_unit_closed_meanwhile(office: Office) -> None:
    """A unit closed (it cannot deliver) while its line was on its way: the
    line goes as the closing took the unit's task buttons away."""
    e, p, retire = office.engine, office.id, office.engine.keep
    await to_collection(office)
    three, four = [await task_of(office, f"unit{i}", 6) for i in (3, 4)]
    office.clock.advance(minutes=5)
    await e.collection.close(p("perencana"), three.run_step_id, "Dinas luar", unit_id=three.unit_id)
    closed = task_line(office, "unit3", three)
    owing = task_line(office, "unit4", four)
    assert await retire([closed, owing]) == 1
    context = await settled(office, closed)
    assert context is not None and context["kind"] == "closed"
    assert line(context).startswith("🔒 Ditutup oleh Perencana Satu")
    assert await settled(office, owing) is None
