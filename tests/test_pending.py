"""What the bot waits for: one question at a time, and held files kept
apart from it, so a new question never drops a file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bot.audit import verify_chain
from bot.clock import FakeClock
from bot.db import Database
from bot.models import Event, HeldFiles, Member, Notification, PendingInput
from bot.pending import (
    HELD_FOR,
    QUESTIONS,
    AlbumFor,
    CloseReason,
    FileFor,
    HeldFile,
    MeetingConfirm,
    MeetingTime,
    NoteFor,
    NoteKept,
    Outdated,
    Question,
    ReturnNote,
    Waiting,
)


async def member(db: Database, clock: FakeClock, telegram_id: int = 1) -> int:
    async with db.transaction() as s:
        m = Member(telegram_id=telegram_id, name=f"M{telegram_id}", joined_at=clock.now())
        s.add(m)
        await s.flush()
        assert m.id is not None
        return m.id


def doc(name: str, batch: str | None = None) -> HeldFile:
    return HeldFile(f"id-{name}", name, batch=batch)


# One of each kind of question, as the handlers ask them.
EVERY_QUESTION: list[Question] = [
    FileFor(1, 7),
    AlbumFor("alb", 1, None),
    NoteFor(1),
    NoteFor(1, outcome=2),
    NoteKept(1, "catatan"),
    MeetingTime(1),
    MeetingConfirm(1, datetime(2026, 11, 25, 13, 0, tzinfo=UTC), "Aula"),
    CloseReason(1, None, ("Unit A", "Unit B")),
    ReturnNote(9),
]


async def test_questions_come_and_go_and_held_files_stay(db: Database, clock: FakeClock) -> None:
    w = Waiting(db, clock)
    me = await member(db, clock)
    first = await w.hold(me, doc("a.pdf"))
    album = await w.hold(me, doc("p1.jpg", "alb"))
    assert await w.add_page(me, "alb", doc("p2.jpg", "alb"))
    assert not await w.add_page(me, "other", doc("x.jpg", "other"))

    for question in EVERY_QUESTION:
        await w.set(me, question)
        assert await w.get(me) == question  # read back as it was asked
    assert await w.clear(me) == EVERY_QUESTION[-1]
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


def test_every_kind_of_question_is_in_the_table() -> None:
    kinds = {type(q) for q in EVERY_QUESTION}
    assert set(QUESTIONS.values()) == kinds
    assert sorted(QUESTIONS) == sorted(c.kind for c in kinds)


async def test_rows_written_before_the_types_still_load(db: Database, clock: FakeClock) -> None:
    """Questions and held files in a database from before: the same kinds
    and JSON, read as their types; a kind no longer asked is outdated."""
    w = Waiting(db, clock)
    me = await member(db, clock)
    old: dict[str, tuple[dict[str, Any], Question]] = {
        "note": ({"verb": "dec", "run_step_id": 4, "outcome": 1}, NoteFor(4, 1)),
        "close": (
            {"run_step_id": 4, "unit_id": None, "units": ["U"]},
            CloseReason(4, None, ("U",)),
        ),
        "meeting_confirm": (
            {"run_step_id": 4, "starts_at": "2026-11-25T13:00:00+07:00", "place": "Aula"},
            MeetingConfirm(4, datetime(2026, 11, 25, 6, 0, tzinfo=UTC), "Aula"),
        ),
        "upload": ({"run_step_id": 4, "unit_id": 2}, FileFor(4, 2)),
        "held": ({"groups": []}, Outdated("held")),
        "return": ({"nothing": 1}, Outdated("return")),  # a payload that does not fit
    }
    for kind, (payload, question) in old.items():
        async with db.transaction() as s:
            row = await s.get(PendingInput, me)
            if row is None:
                row = PendingInput(member_id=me, kind=kind, created_at=clock.now())
            row.kind, row.payload = kind, payload
            s.add(row)
        assert await w.get(me) == question, kind

    page: dict[str, Any] = {
        "file_id": "f1",
        "name": "satu.xlsx",
        "mime": "application/pdf",
        "kind": "document",
        "size": 10,
        "batch": None,
    }
    async with db.transaction() as s:
        old_files: list[dict[str, Any]] = [page, {"file_id": "f0", "name": "lama.pdf"}]
        s.add(HeldFiles(member_id=me, files=old_files, created_at=clock.now()))
    [group] = await w.held(me)
    assert group.files == (
        HeldFile("f1", "satu.xlsx", "application/pdf", "document", 10),
        HeldFile("f0", "lama.pdf"),
    )
    assert group.files[0].to_json() == page  # and written back the same way
