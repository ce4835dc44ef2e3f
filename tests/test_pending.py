"""What the bot waits for: one question at a time, and held files kept
apart from it, so a new question never drops a file."""

from __future__ import annotations

from sqlmodel import select

from bot.audit import verify_chain
from bot.clock import FakeClock
from bot.db import Database
from bot.models import Event, Member, Notification
from bot.pending import HELD_FOR, Waiting


async def member(db: Database, clock: FakeClock, telegram_id: int = 1) -> int:
    async with db.transaction() as s:
        m = Member(telegram_id=telegram_id, name=f"M{telegram_id}", joined_at=clock.now())
        s.add(m)
        await s.flush()
        assert m.id is not None
        return m.id


def doc(name: str, batch: str | None = None) -> dict[str, object]:
    return {"file_id": f"id-{name}", "name": name, "batch": batch}


async def test_questions_come_and_go_and_held_files_stay(db: Database, clock: FakeClock) -> None:
    w = Waiting(db, clock)
    me = await member(db, clock)
    first = await w.hold(me, doc("a.pdf"))
    album = await w.hold(me, doc("p1.jpg", "alb"))
    assert await w.add_page(me, "alb", doc("p2.jpg", "alb"))
    assert not await w.add_page(me, "other", doc("x.jpg", "other"))

    for kind in ("note", "meeting", "close", "return", "upload", "note_ready"):
        await w.set(me, kind, run_step_id=1)
    assert (await w.get(me)).kind == "note_ready"  # type: ignore[union-attr]
    await w.clear(me)
    assert await w.get(me) is None
    assert [(g.id, g.names) for g in await w.held(me)] == [
        (first.id, ["a.pdf"]),
        (album.id, ["p1.jpg", "p2.jpg"]),
    ]

    # Taken once; a second press of the same button finds nothing.
    taken = await w.take(me, album.id)
    assert taken is not None and taken.names == ["p1.jpg", "p2.jpg"]
    assert await w.take(me, album.id) is None
    # A pick the task refused: held again under its own id.
    await w.restore(me, taken)
    assert [g.id for g in await w.held(me)] == [first.id, album.id]
    # Someone else's group is not theirs to take.
    other = await member(db, clock, 2)
    assert await w.take(other, first.id) is None


async def test_expiry_after_a_day_is_told_and_recorded(db: Database, clock: FakeClock) -> None:
    w = Waiting(db, clock)
    me, other = await member(db, clock), await member(db, clock, 2)
    await w.hold(me, doc("lama.pdf"))
    clock.advance(hours=3)
    await w.hold(me, doc("baru.pdf"))
    await w.hold(other, doc("orang-lain.pdf"))
    clock.advance(seconds=HELD_FOR.total_seconds() - 3 * 3600 - 1)
    assert await w.expire_held() == []
    clock.advance(seconds=1)
    # One person's check lets go of theirs only.
    assert await w.expire_held(other) == []
    [gone] = await w.expire_held(me)
    assert gone.names == ["lama.pdf"]
    assert [g.names for g in await w.held(me)] == [["baru.pdf"]]
    async with db.session() as s:
        [note] = (await s.exec(select(Notification))).all()
        [event] = (await s.exec(select(Event))).all()
        assert (await verify_chain(s)).ok
    assert (note.member_id, note.template, note.context["names"]) == (
        me,
        "held_expired",
        ["lama.pdf"],
    )
    assert (event.kind, event.details["member_id"], event.details["names"]) == (
        "held_files_expired",
        me,
        ["lama.pdf"],
    )
    # Cancelling is recorded too, with the person as the actor.
    dropped = await w.drop_held(me)
    assert [g.names for g in dropped] == [["baru.pdf"]] and await w.held(me) == []
    async with db.session() as s:
        kinds = [(e.kind, e.actor_id) for e in (await s.exec(select(Event))).all()]
    assert kinds == [("held_files_expired", None), ("held_files_cancelled", me)]
