""" "Putar otomatis": the training office walks the whole seed SOP by itself,
a beat every few seconds, acting as its people through the built-in Bot
API server: the head starts the run, the planners send the form, the
meeting is set and held, every unit sends its workbook (one a faulty one,
returned and sent again; one photos of its pages as an album), the head
returns the document once (the correction loop) and then approves.

It plays the way a person does, from what each chat shows now: a message
with buttons is a thing to do, a question is answered. So a trainer can take
over any person at any moment (the page marks them; the autoplay leaves
them alone) and hand them back, and the play carries on from wherever the
run stands. What it cannot do three times running, it stops at and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot.botapi import Person
from bot.botapi.client import NoButton
from bot.demo.cast import Actor
from bot.demo.room import TrainingRoom
from bot.demo.words import say
from bot.models import Meeting, RunState

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
STEP = re.compile(r"Langkah (\d+)")
DEFAULT_PAUSE = 3.0  # seconds between beats: time to read what happened
SAMPLES = Path(__file__).resolve().parent / "samples"
# The project's sample workbooks (a fresh clone has them; the tests use them too).
TEST_DATA = Path(__file__).resolve().parent.parent.parent / "tests" / "data"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class Samples:
    """The files the office sends: the blank form, each unit's workbook
    (`-salah` a faulty one, `-perbaikan` its corrected copy), photos."""

    folder: Path
    photos: Path = SAMPLES

    @property
    def form(self) -> Path:
        return self.folder / "form-pengumpulan-data-kinerja.xlsx"

    def missing(self) -> str | None:
        """Why the autoplay cannot play with these files, or None."""
        if not self.form.is_file():
            return say("tanpa_contoh", folder=self.folder)
        if len(self.pages()) < 2:
            return say("tanpa_foto", folder=self.photos)
        return None

    def workbooks(self, unit: str) -> tuple[Path | None, Path | None]:
        """(the first copy a unit sends, its corrected copy or None)."""
        found = sorted(self.folder.glob(f"unit-*-{slug(unit)}*.xlsx"))
        faulty = [f for f in found if f.stem.endswith("-salah")]
        fixed = [f for f in found if f.stem.endswith("-perbaikan")]
        plain = [f for f in found if f not in faulty and f not in fixed]
        if faulty:
            again = fixed or plain
            return faulty[0], again[0] if again else None
        return (plain[0] if plain else None), None

    def pages(self) -> list[Path]:
        return sorted(self.photos.glob("halaman-*.jpg"))


def shown(message: dict[str, Any]) -> str:
    return str(message.get("text") or message.get("caption") or "")


def receipt_after(person: Person, message: dict[str, Any]) -> bool:
    """Has the bot receipted a file this person sent after `message` (a
    task)? Then it was sent, by the autoplay or by the trainer."""
    return any(
        m["message_id"] > message["message_id"] and "Tanda terima" in shown(m)
        for m in person.messages
    )


def labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [str(b["text"]) for row in rows for b in row]


def code_in(message: dict[str, Any]) -> str | None:
    """The first `<code>` part of a message (a prompt's example)."""
    text = shown(message)
    units = text.encode("utf-16-le")
    for entity in message.get("entities") or message.get("caption_entities") or []:
        if entity["type"] == "code":
            start, end = entity["offset"] * 2, (entity["offset"] + entity["length"]) * 2
            return units[start:end].decode("utf-16-le")
    return None


@dataclass
class Beat:
    """One thing one person does (a few actions), then a pause to read it."""

    actor: Actor
    what: str  # said on the page: "Rina: unggah form"
    act: Callable[[], Awaitable[None]]
    key: tuple[int, int, str]  # (person, message, action): repeats are caught
    pause: float = 1.0  # times the autoplay's pause


@dataclass
class Autoplay:
    room: TrainingRoom
    samples: Samples
    pause: float = DEFAULT_PAUSE
    title: str = ""
    manual: set[int] = field(default_factory=set)  # people the trainer plays
    status: str = field(default_factory=lambda: say("belum_mulai"))
    state: str = "idle"  # idle, playing, paused, done, stopped
    beats: int = 0
    on_change: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._resume = asyncio.Event()
        self._resume.set()
        self._task: asyncio.Task[None] | None = None
        self._done: set[str] = set()  # what was played once: "notulen", "koreksi", ...
        self._tries: dict[tuple[int, int, str], int] = {}

    # -------------------------------------------------------------- control

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            self.resume()
            return
        why = self.samples.missing()
        if why:
            self._say("stopped", say("tidak_bisa_mulai", why=why))
            return
        self._resume.set()
        self._task = asyncio.create_task(self._play())

    def pause_play(self) -> None:
        if self.state == "playing":
            self._resume.clear()
            self._say("paused", say("dijeda"))

    def resume(self) -> None:
        if self.state == "paused":
            self._resume.set()
            self._say("playing", say("dilanjutkan"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def finished(self) -> None:
        """Until the play has ended (done or stopped)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def take_over(self, telegram_id: int) -> None:
        self.manual.add(telegram_id)
        self._changed()

    def hand_back(self, telegram_id: int) -> None:
        self.manual.discard(telegram_id)
        self._changed()

    def _say(self, state: str, status: str) -> None:
        self.state, self.status = state, status
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ----------------------------------------------------------------- play

    async def _play(self) -> None:
        self._say("playing", say("memulai"))
        waited = 0
        try:
            while True:
                await self._resume.wait()
                await self.room.settle()
                if await self._run_over():
                    self._say("done", say("selesai"))
                    return
                beat = await self._next_beat()
                if beat is None:
                    waited += 1
                    if waited == 1:
                        self._say(
                            self.state,
                            say("menunggu_anda") if self.manual else say("menunggu_bot"),
                        )
                    await asyncio.sleep(max(0.2, self.pause / 3))
                    continue
                waited = 0
                tries = self._tries.get(beat.key, 0) + 1
                self._tries[beat.key] = tries
                if tries > 3:
                    self._say(
                        "stopped",
                        say("gagal_tiga_kali", what=beat.what),
                    )
                    return
                self._say(self.state, beat.what)
                await beat.act()
                self.beats += 1
                await self.room.settle()
                await asyncio.sleep(self.pause * beat.pause)
        except asyncio.CancelledError:
            self._say("stopped", say("dihentikan"))
            raise
        except Exception as exc:  # the page says so; the room keeps running
            log.exception("autoplay failed")
            self._say("stopped", say("galat", why=exc))

    async def _run_over(self) -> bool:
        runs = await self.room.services.engine.queries.runs(open_only=False)
        if not runs or "mulai" not in self._done:
            return False
        return runs[0].state != RunState.open

    async def _next_beat(self) -> Beat | None:
        actors = [a for a in self.room.actors if a.id not in self.manual]
        if not await self.room.services.engine.queries.runs(open_only=True):
            head = next((a for a in actors if a.key == "kepala"), None)
            if head is None or "mulai" in self._done:
                return None
            return Beat(
                head,
                say("beat", name=head.name, what=say("b_mulai")),
                self._start_run,
                (0, 0, "mulai"),
            )
        for actor in actors:
            live = [m for m in actor.person.messages if labels(m)]
            for message in live:
                beat = self._beat_for(actor, message)
                if beat is not None:
                    return beat
        return None

    # ---------------------------------------------------------------- rules

    def _beat_for(self, actor: Actor, m: dict[str, Any]) -> Beat | None:
        text, buttons = shown(m), labels(m)
        p = actor.person
        key = (actor.id, int(m["message_id"]))

        def beat(what: str, act: Callable[[], Awaitable[None]], pause: float = 1.0) -> Beat:
            return Beat(actor, say("beat", name=actor.name, what=what), act, (*key, what), pause)

        answered = f"undangan:{actor.key}:{m['message_id']}"
        if "Undangan rapat" in text and "Hadir" in " ".join(buttons) and answered not in self._done:
            # The invitation keeps its answers (one may change one's mind).
            absent = actor.key == self._faulty_unit_key()
            choice = "Tidak hadir" if absent else "Hadir"

            async def answer() -> None:
                await self._do(p, p.press(m, choice))
                self._done.add(answered)

            return beat(say("b_undangan", choice=choice), answer, 0.3)
        if "Berkas dikembalikan" in text and any("Unggah" in b for b in buttons):
            return beat(say("b_perbaikan"), self._send_fixed(actor, m))
        if "Berkas masuk" in text and any("Terima" in b for b in buttons):
            return self._review(actor, m, beat)
        found = STEP.search(text)
        if found is None:
            return None
        step = int(found.group(1))
        done = any("Selesai" in b for b in buttons)
        if step == 2 and any("Unggah" in b for b in buttons):
            return beat(say("b_form"), self._upload_then_done(p, m, "form"))
        if step == 3 and any("Kirim" in b for b in buttons):
            label = next(b for b in buttons if "Kirim" in b)
            return beat(say("b_kirim_unit"), self._press(p, m, label))
        if step == 4 and any("Atur rapat" in b for b in buttons):
            return beat(say("b_rapat"), self._schedule(p, m))
        if step == 5 and done:
            if "notulen" not in self._done and self._minutes_sent():
                self._done.add("notulen")  # the trainer sent them
            if actor.key == "sekretaris" and "notulen" not in self._done:
                return beat(say("b_notulen"), self._minutes(p, m))
            if "notulen" in self._done or self._played_by_trainer("sekretaris"):
                return beat(say("b_rapat_selesai"), self._after_meeting(p, m))
            return None
        if step == 6 and actor.unit is not None and receipt_after(p, m):
            self._done.add(f"kirim:{actor.key}")  # sent (perhaps by the trainer)
        if step == 6 and actor.unit is not None and f"kirim:{actor.key}" not in self._done:
            return beat(say("b_berkas_unit", unit=actor.unit), self._deliver(actor, m))
        if step == 8 and done:
            return beat(say("b_dokumen"), self._upload_then_done(p, m, "dokumen"))
        if step == 10 and any("Setujui" in b for b in buttons):
            if p.find("tercatat: Kembalikan"):
                self._done.add("koreksi")  # returned once already (perhaps by the trainer)
            if "koreksi" not in self._done:
                return beat(say("b_koreksi"), self._correct(p, m))
            return beat(say("b_setujui"), self._press(p, m, "Setujui"))
        if step == 12 and done:
            return beat(
                say("b_ttd"),
                self._upload_then_done(p, m, "ttd"),
            )
        if step == 13 and done:
            return beat(say("b_surat"), self._letter(p, m))
        if step in (6, 7):
            return None  # a unit's own task ends with its file; step 7 with the reviews
        if done:
            return beat(say("b_selesai", step=step), self._press(p, m, "Selesai"))
        return None

    def _minutes_sent(self) -> bool:
        for actor in self.room.actors:
            if actor.key == "sekretaris":
                tasks = [m for m in actor.person.messages if "Langkah 5:" in shown(m)]
                return bool(tasks) and receipt_after(actor.person, tasks[0])
        return False

    def _played_by_trainer(self, key: str) -> bool:
        return any(a.key == key and a.id in self.manual for a in self.room.actors)

    def _faulty_unit_key(self) -> str | None:
        for actor in self.room.actors:
            if actor.unit is not None and self.samples.workbooks(actor.unit)[1] is not None:
                return actor.key
        return None

    def _album_unit_key(self) -> str | None:
        units = [a for a in self.room.actors if a.unit is not None]
        return units[-1].key if units else None

    def _review(self, actor: Actor, m: dict[str, Any], beat: Callable[..., Beat]) -> Beat:
        text = shown(m)
        unit = next((a.unit for a in self.room.actors if a.unit and a.unit in text), None)
        if "Pemeriksaan otomatis" in text and f"kembali:{unit}" not in self._done:

            async def give_back() -> None:
                p = actor.person
                await self._do(p, p.press(m, "Kembalikan"))
                note = say("catatan_unit")
                await self._do(p, p.send_text(note))
                self._done.add(f"kembali:{unit}")

            return beat(say("b_kembalikan", unit=unit), give_back)
        return beat(say("b_terima", unit=unit), self._press(actor.person, m, "Terima"), 0.5)

    # -------------------------------------------------------------- actions

    async def _do(self, p: Person, action: Awaitable[object]) -> None:
        """One thing a person does, then until the bot has answered them
        and sent what it owes (a beat reads the chats as they are after it)."""
        since = self.room.heard(p.id)
        try:
            await action
        except NoButton:
            return  # gone meanwhile (the trainer pressed it?): the next beat looks again
        await self.room.answered(p.id, since)
        await self.room.settle()

    def _press(self, p: Person, m: dict[str, Any], label: str) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            await self._do(p, p.press(m, label))

        return act

    async def _start_run(self) -> None:
        head = next(a for a in self.room.actors if a.key == "kepala")
        now = self.room.clock.now().astimezone(self.room.services.calendar.tz)
        title = self.title or say("judul", quarter=(now.month - 1) // 3 + 1, year=now.year)
        p = head.person
        await self._do(p, p.send_command("/mulai", f"{title} | {say('disposisi')}"))
        self._done.add("mulai")

    def _upload_then_done(
        self, p: Person, m: dict[str, Any], what: str
    ) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            if what == "form":
                data, name, mime = self.samples.form.read_bytes(), self.samples.form.name, XLSX
            elif what == "dokumen":
                rounds = sum(1 for k in self._done if k.startswith("dokumen"))
                data = self.samples.form.read_bytes()
                name, mime = f"dokumen-kinerja-v{rounds + 1}.xlsx", XLSX
                self._done.add(f"dokumen{rounds + 1}")
            else:
                data, name, mime = b"%PDF-1.4\n% dokumen bertanda tangan\n", "ttd-kepala.pdf", PDF
            if not receipt_after(p, m):  # else the trainer already sent one
                await self._do(p, p.send_document(data, name, mime, reply_to=m))
            await self._do(p, p.press(m, "Selesai"))

        return act

    def _schedule(self, p: Person, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            await self._do(p, p.press(m, "Atur rapat"))
            prompt = next((x for x in reversed(p.messages) if "Tulis tanggal" in shown(x)), None)
            example = code_in(prompt) if prompt else None
            if example is None:
                raise RuntimeError(say("tanpa_contoh_waktu"))
            await self._do(p, p.send_text(example))

        return act

    def _minutes(self, p: Person, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            notes = b"%PDF-1.4\n% notulen rapat\n"
            await self._do(p, p.send_document(notes, "notulen-rapat.pdf", PDF, reply_to=m))
            self._done.add("notulen")

        return act

    def _after_meeting(self, p: Person, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            async with self.room.services.db.session() as s:
                meeting = (await s.exec(select(Meeting).order_by(col(Meeting.id).desc()))).first()
            now = self.room.clock.now()
            if meeting is not None and meeting.starts_at > now:
                # Nobody waits a night for a meeting in training: time jumps to it.
                ahead = meeting.starts_at + timedelta(minutes=45) - now
                self.room.clock.advance(seconds=ahead.total_seconds())
                self._say(self.state, say("lompat_rapat"))
            await self._do(p, p.press(m, "Selesai"))

        return act

    def _deliver(self, actor: Actor, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            p = actor.person
            first, _fixed = self.samples.workbooks(actor.unit or "")
            if actor.key == self._album_unit_key() or first is None:
                pages = [page.read_bytes() for page in self.samples.pages()]
                await self._do(p, p.send_album(pages))
            else:
                await self._do(p, p.send_document(first.read_bytes(), first.name, XLSX))
            self._done.add(f"kirim:{actor.key}")

        return act

    def _send_fixed(self, actor: Actor, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            p = actor.person
            first, fixed = self.samples.workbooks(actor.unit or "")
            again = fixed or first
            if again is None:
                raise RuntimeError(say("tanpa_berkas_unit", unit=actor.unit))
            label = next(b for b in labels(m) if "Unggah" in b)
            await self._do(p, p.press(m, label))
            await self._do(p, p.send_document(again.read_bytes(), again.name, XLSX))

        return act

    def _correct(self, p: Person, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            await self._do(p, p.press(m, "Kembalikan dengan catatan"))
            await self._do(p, p.send_text(say("catatan_kepala")))
            self._done.add("koreksi")

        return act

    def _letter(self, p: Person, m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            await self._do(p, p.press(m, "Selesai"))
            if "nomor surat" in shown(p.messages[-1]):
                await self._do(p, p.send_text(say("nomor_surat", year=self.room.clock.now().year)))

        return act
