"""The outbox gives up only after its limit, records it, and tells the admins."""

from __future__ import annotations

from sqlmodel import select

from bot.models import Event, Notification, OutboxState
from bot.outbox import Outbox
from tests.support import Office


async def test_gives_up_after_the_limit_and_tells_admins(office: Office) -> None:
    outbox = Outbox(office.db, office.clock, max_attempts=3)
    await office.engine.runs.start(office.id("kepala"), "TW III")
    [row, *_] = await outbox.due()
    for attempt in range(1, 4):
        claimed = await outbox.begin(row.id)
        assert claimed is not None and claimed[0].attempts == attempt
        kept = await outbox.retry_later(row.id, outbox.backoff(attempt), "Timed out")
        assert kept == (attempt < 3)
        office.clock.advance(seconds=outbox.backoff(attempt))
    async with office.db.session() as s:
        failed = await s.get(Notification, row.id)
        told = (
            await s.exec(select(Notification).where(Notification.template == "delivery_failed"))
        ).all()
        events = (await s.exec(select(Event).where(Event.kind == "delivery_failed"))).all()
    assert failed.state == OutboxState.failed and failed.last_error == "Timed out"
    assert [n.member_id for n in told] == [office.id("admin")]
    assert told[0].context["template"] == "task"
    assert len(events) == 1
    assert row.id not in [n.id for n in await outbox.due()]


async def test_retry_after_does_not_use_up_attempts(office: Office) -> None:
    outbox = Outbox(office.db, office.clock, max_attempts=2)
    await office.engine.runs.start(office.id("kepala"), "TW III")
    [row, *_] = await outbox.due()
    for _ in range(5):
        await outbox.begin(row.id)
        assert await outbox.retry_later(row.id, 3, "Flood", count_attempt=False)
        assert row.id not in [n.id for n in await outbox.due()]
        office.clock.advance(seconds=3)
    await outbox.begin(row.id)
    await outbox.sent(row.id, 42)
    async with office.db.session() as s:
        sent = await s.get(Notification, row.id)
    assert (sent.state, sent.telegram_message_id) == (OutboxState.sent, 42)


async def test_begin_gives_up_a_row_that_used_its_attempts(office: Office) -> None:
    """A row whose sends never come back (the process dies each time) is not
    retried forever: begin() fails it and tells the admins."""
    outbox = Outbox(office.db, office.clock, max_attempts=2)
    await office.engine.runs.start(office.id("kepala"), "TW III")
    [row, *_] = await outbox.due()
    assert await outbox.begin(row.id) is not None  # attempt 1, then a crash
    assert await outbox.begin(row.id) is not None  # attempt 2 (a possible duplicate)
    assert await outbox.begin(row.id) is None
    async with office.db.session() as s:
        failed = await s.get(Notification, row.id)
        told = (
            await s.exec(select(Notification).where(Notification.template == "delivery_failed"))
        ).all()
    assert (failed.state, failed.attempts) == (OutboxState.failed, 2)
    assert [n.member_id for n in told] == [office.id("admin")]
    assert row.id not in [n.id for n in await outbox.due()]


async def test_an_edit_waits_for_its_message_and_is_dropped_without_one(office: Office) -> None:
    """The edit of a task message (its step done) goes after the message
    itself; one whose message never went out has nothing to edit and is
    dropped with the reason; a message two days old is not edited."""

    from bot.views import IncomingFile
    from tests.support import FORM, XLSX

    outbox, e, p = Outbox(office.db, office.clock), office.engine, office.id
    await e.runs.start(p("kepala"), "TW III")
    [task] = await e.queries.tasks(p("perencana"))
    await e.collection.upload(
        p("perencana"), task.run_step_id, IncomingFile(b"form", FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), task.run_step_id)
    async with office.db.session() as s:
        rows = (await s.exec(select(Notification).order_by(Notification.id))).all()
    tasks = {n.member_id: n for n in rows if n.template == "task" and n.context["number"] == 2}
    edits = {n.member_id: n for n in rows if n.template == "settled"}
    assert {m: n.edits_id for m, n in edits.items()} == {m: n.id for m, n in tasks.items()}
    one, two = p("perencana"), p("perencana2")

    assert await outbox.begin(edits[one].id) is None  # its message has not gone yet
    assert edits[one].id not in [n.id for n in await outbox.due()]
    await outbox.begin(tasks[one].id)
    await outbox.sent(tasks[one].id, 7)
    await outbox.failed(tasks[two].id, "Bad Request: chat not found")
    office.clock.advance(seconds=5)
    claimed = await outbox.begin(edits[one].id)
    assert claimed is not None
    message_id, target = await outbox.edit_target(claimed[0])
    assert (message_id, target.id) == (7, tasks[one].id)
    assert await outbox.begin(edits[two].id) is None
    async with office.db.session() as s:
        dropped = await s.get(Notification, edits[two].id)
    assert (dropped.state, dropped.last_error) == (OutboxState.dropped, "message_not_sent")

    office.clock.advance(hours=48)
    assert await outbox.edit_target(claimed[0]) is None  # too old: a new message instead
