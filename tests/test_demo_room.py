"""The training room without a browser: where it refuses to start, its
clock, the page's routes as the page calls them, and the autoplay leaving a
person the trainer took over to the trainer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import main
from bot.clock import ScaledClock
from bot.demo.room import RoomRefused, check_folder
from bot.demo.serve import OpenRoom, open_room
from tests.support import FORM

KEPALA, RINA = 1001, 1003


def test_a_kept_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    check_folder(tmp_path / "baru")  # does not exist yet: fine
    check_folder(tmp_path)  # empty: fine
    office = tmp_path / "kantor"
    (office / "data").mkdir(parents=True)
    (office / "data" / "sopbot.db").write_bytes(b"SQLite format 3\x00")
    with pytest.raises(RoomRefused, match="berisi database bot"):
        check_folder(office)
    with pytest.raises(RoomRefused, match="berisi database bot"):
        check_folder(office / "data")
    (tmp_path / "lain").mkdir()
    (tmp_path / "lain" / "catatan.txt").write_text("x")
    with pytest.raises(RoomRefused, match="tidak kosong"):
        check_folder(tmp_path / "lain")


def test_sopbot_demo_refuses_a_real_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sopbot.db").write_bytes(b"SQLite format 3\x00")
    assert main(["demo", "--keep", str(tmp_path), "--port", "0"]) == 2
    assert "berisi database bot" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sopbot.db"]  # untouched
    assert main(["demo", "--speed", "0", "--port", "0"]) == 2
    assert "Kecepatan harus" in capsys.readouterr().err


def test_the_fast_clock_changes_pace_without_a_jump() -> None:
    start = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    clock = ScaledClock(start, 3600)
    time.sleep(0.01)
    fast = clock.now() - start
    assert fast.total_seconds() >= 36  # at least 0.01 s of real time, 3600 times
    before = clock.now()
    clock.set_factor(1)
    after = clock.now()
    assert before <= after and (after - before).total_seconds() < 5
    jumped = clock.advance(hours=2)
    assert (jumped - after).total_seconds() >= 7200
    with pytest.raises(ValueError):
        clock.set_factor(0)


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[OpenRoom]:
    async with open_room(speed=60, keep=tmp_path / "latihan", pause=0) as opened:
        yield opened


async def until(
    check: Callable[[], Awaitable[Any]], limit: float = 30.0, why: Callable[[], str] = str
) -> Any:
    """Until `check` gives something true (the room runs in real time; a
    shared machine may be slow, so the limits are generous)."""
    deadline = time.monotonic() + limit
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"the room did not answer in time {why()}"
        await asyncio.sleep(0.05)


async def test_the_page_acts_as_people_and_refuses_bad_requests(room: OpenRoom) -> None:
    async with httpx.AsyncClient(base_url=room.address) as web:
        state = (await web.get("/api/state")).json()
        assert [p["id"] for p in state["people"]][:4] == [1001, 1002, 1003, 1004]
        assert len(state["people"]) == len(room.room.actors) == 10  # 4 + 5 units + admin
        # The welcome (and the morning digest, for those who get it, when
        # the room's clock starts at the office's opening).
        assert all(p["unread"] >= 1 for p in state["people"])
        assert (await web.post(f"/api/chats/{RINA}/read", json={})).status_code == 200
        state = (await web.get("/api/state")).json()
        assert [p["unread"] for p in state["people"] if p["id"] == RINA] == [0]

        started = await web.post(
            f"/api/chats/{KEPALA}/text", json={"text": "/mulai Data Kinerja TW IV | Segera"}
        )
        assert started.status_code == 200

        async def task() -> dict[str, Any] | None:
            chat = (await web.get(f"/api/chats/{RINA}")).json()
            found = [m for m in chat["messages"] if "Langkah 2:" in (m["text"] or "")]
            return found[-1] if found and found[-1]["keyboard"] else None

        step2 = await until(task)
        # The planner's command menu, as the bot set it, for the page to offer.
        commands = (await web.get(f"/api/chats/{RINA}")).json()["commands"]
        assert "tugas" in [c["command"] for c in commands] and all(
            c["description"] for c in commands
        )
        assert {"type": "bold", "offset": 3, "length": 10} in step2["entities"]
        button = next(b for row in step2["keyboard"] for b in row if "Unggah" in b["text"])
        pressed = await web.post(
            f"/api/chats/{RINA}/press",
            json={"message_id": step2["id"], "data": button["callback_data"]},
        )
        assert pressed.status_code == 200
        await room.room.settle()
        sent = await web.post(
            f"/api/chats/{RINA}/upload",
            files={"files": (FORM.name, FORM.read_bytes(), "application/octet-stream")},
        )
        assert sent.status_code == 200

        async def receipt() -> dict[str, Any] | None:
            chat = (await web.get(f"/api/chats/{RINA}")).json()
            mine = [m for m in chat["messages"] if m["mine"] and "document" in m]
            said = [m for m in chat["messages"] if "Tanda terima" in (m["text"] or "")]
            return mine[-1] if mine and said else None

        document = await until(receipt)
        assert document["document"]["name"] == FORM.name
        download = await web.get(document["document"]["url"])
        assert download.content == FORM.read_bytes()

        # Bad requests get a clear Indonesian answer and change nothing.
        before = sum(len(c) for c in room.room.server.sent_by_people.values())
        refusals = [
            (await web.post(f"/api/chats/{RINA}/text", json={"text": "  "}), "Tulis pesan"),
            (await web.post("/api/chats/4242/text", json={"text": "x"}), "tidak ada"),
            (
                await web.post(f"/api/chats/{RINA}/press", json={"message_id": 999, "data": "x"}),
                "tidak ada di obrolan",
            ),
            (
                await web.post(f"/api/chats/{RINA}/upload", data={"caption": "tanpa berkas"}),
                "Pilih berkas",
            ),
            (await web.post("/api/speed", json={"factor": 0}), "Kecepatan harus"),
            (await web.post("/api/autoplay", json={"action": "terbang"}), "tidak dikenal"),
            (await web.post(f"/api/chats/{RINA}/text", content=b"{"), "tidak sah"),
        ]
        for response, words in refusals:
            assert response.status_code in (400, 404) and words in response.text, response.text
        assert sum(len(c) for c in room.room.server.sent_by_people.values()) == before
        assert (await web.get("/api/files/tidak-ada/x.pdf")).status_code == 404
        assert (await web.get("/static/../room.py")).status_code == 404
        assert (await web.post("/api/speed", json={"factor": 600})).status_code == 200
        assert room.room.clock.factor == 600


def presses_by(room: OpenRoom, telegram_id: int) -> int:
    """Buttons this person pressed, as the bot received them."""
    return sum(
        1
        for r in room.room.server.requests
        if r.method == "getUpdates"
        for update in r.params.get("result", [])
        if update.get("callback_query", {}).get("from", {}).get("id") == telegram_id
    )


async def test_the_autoplay_leaves_a_person_taken_over_to_the_trainer(room: OpenRoom) -> None:
    play, server = room.autoplay, room.room.server
    head = room.room.actor(KEPALA)

    async def status(words: str) -> bool:
        return words in play.status

    play.take_over(KEPALA)
    play.start()
    await until(
        lambda: status("Menunggu giliran orang yang Anda perankan"), why=lambda: play.status
    )
    assert not [m for m in server.sent_by_people[KEPALA].values() if m["text"].startswith("/mulai")]
    # The trainer, as the head, starts the run; the autoplay carries on from there.
    await head.person.send_command("/mulai", "Data Kinerja TW IV | Segera")

    async def invited() -> bool:
        return play.beats >= 4 and bool(head.person.find("Undangan rapat"))

    await until(invited, limit=60, why=lambda: play.status)
    play.pause_play()
    assert play.state == "paused"
    # The head's invitation waits for the trainer: the autoplay pressed nothing as the head.
    assert presses_by(room, KEPALA) == 0
    mulai = [m for m in server.sent_by_people[KEPALA].values() if m["text"].startswith("/mulai")]
    assert len(mulai) == 1
    # Acting as someone on the page while the autoplay plays takes them over too.
    async with httpx.AsyncClient(base_url=room.address) as web:
        assert RINA not in play.manual
        await web.post(f"/api/chats/{RINA}/text", json={"text": "/tugas"})
        assert RINA in play.manual
        state = (await web.get("/api/state")).json()
        assert {p["id"] for p in state["people"] if p["manual"]} == {KEPALA, RINA}
    play.hand_back(RINA)
    # Handed back, the head is played again: the invitation is answered.
    play.hand_back(KEPALA)
    play.resume()

    async def answered() -> bool:
        return presses_by(room, KEPALA) > 0

    await until(answered, limit=60, why=lambda: play.status)
    await play.stop()
    assert play.state == "stopped"


async def test_reminders_come_at_the_fast_clocks_pace(room: OpenRoom) -> None:
    """At 3600x a working hour passes in a second: step 2's deadline (one
    hour) passes while the trainer watches, and the planners are reminded
    without anyone touching the clock."""
    head, rina = room.room.actor(KEPALA).person, room.room.actor(RINA).person
    await head.send_command("/mulai", "Data Kinerja TW IV | Segera")

    async def task() -> bool:
        return bool(rina.find("Langkah 2:"))

    await until(task)
    room.room.set_speed(3600)

    async def reminded() -> bool:
        return bool(rina.find("Pengingat: langkah 2"))

    await until(reminded, limit=30)
    assert room.room.server.errors() == []
