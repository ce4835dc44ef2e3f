"""Files from a phone: where a file goes when the sender belongs to two
units, files held while the bot asks, and large files with a local Bot API
server."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot.botapi import Person as FakeUser
from bot.models import Event, HeldFiles, Run, RunStep, StepState, StoredFile, Unit
from tests.fakes.world import World, running_bot
from tests.support import XLSX, workbook

POLDAGRI = "Bidang Politik Dalam Negeri"
SEKRETARIAT = "Sekretariat"


async def two_unit_member(world: World) -> FakeUser:
    """Staf belongs to the Sekretariat and to Poldagri; the run is at step 6."""
    await world.join("kepala", 1001, "Kepala", "kepala_badan")
    await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
    await world.join("rina", 1003, "Rina", "perencana")
    staf = await world.join("staf", 2001, "Staf", "anggota_tim", SEKRETARIAT)
    await staf.send_command("/start", await world.invite("anggota_tim", POLDAGRI))
    await world.idle()
    await world.to_collection()
    return staf


def task_of(person: FakeUser, unit: str) -> dict[str, Any]:
    """The step-6 task message for one unit."""
    found = [m for m in person.find("Langkah 6") if f"Unit: {unit}" in m["text"]]
    assert found, person.texts()[-6:]
    return found[-1]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


async def stored_units(world: World) -> list[str]:
    """The unit of each stored file, in the order received."""
    async with world.services.db.session() as s:
        rows = (
            await s.exec(
                select(StoredFile, Unit)
                .join(Unit, col(Unit.id) == col(StoredFile.unit_id))
                .order_by(col(StoredFile.id))
            )
        ).all()
    return [u.name for _, u in rows]


async def test_two_units_upload_from_each_task_message_and_reply(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        poldagri, sekretariat = task_of(staf, POLDAGRI), task_of(staf, SEKRETARIAT)
        # The two task messages' upload buttons are told apart (and stay short).
        up_p = [b["callback_data"] for b in buttons(poldagri) if "Unggah" in b["text"]]
        up_s = [b["callback_data"] for b in buttons(sekretariat) if "Unggah" in b["text"]]
        assert up_p and up_s and up_p != up_s
        assert all(len(d.encode()) <= 64 for d in up_p + up_s)

        # The button of Poldagri's task: the file is Poldagri's.
        await staf.press(poldagri, "Unggah berkas")
        await world.idle()
        assert POLDAGRI in staf.messages[-1]["text"]  # the prompt names the unit
        await staf.send_document(workbook(POLDAGRI), "poldagri.xlsx", XLSX)
        await world.idle()
        assert f"langkah 6 — {POLDAGRI}" in staf.latest("Tanda terima")["text"]

        # A file sent as a reply to the Sekretariat's task: the Sekretariat's.
        await staf.send_document(
            workbook(SEKRETARIAT, 2), "sekretariat.xlsx", XLSX, reply_to=sekretariat
        )
        await world.idle()
        assert f"langkah 6 — {SEKRETARIAT}" in staf.latest("Tanda terima")["text"]
        assert await stored_units(world) == [POLDAGRI, SEKRETARIAT]
        assert not staf.find("Pilih untuk unit mana")  # never the dead end
        assert world.server.errors() == []


async def test_two_units_tugas_buttons_carry_the_unit(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        await staf.send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(staf.messages) if POLDAGRI in m["text"] and buttons(m))
        await staf.press(line, "Unggah berkas")
        await staf.send_document(workbook(POLDAGRI), "poldagri.xlsx", XLSX)
        await world.idle()
        assert f"langkah 6 — {POLDAGRI}" in staf.latest("Tanda terima")["text"]
        assert await stored_units(world) == [POLDAGRI]


async def test_two_units_an_old_button_or_reply_asks_with_buttons(tmp_path: Path) -> None:
    """A task message from before units were carried (`up:<step>` only) still
    works: the person is asked which unit, with a button for each."""
    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        old = copy.deepcopy(task_of(staf, POLDAGRI))
        run_step_id = int(buttons(old)[0]["callback_data"].split(":")[1])
        legacy = {"text": "📤 Unggah berkas", "callback_data": f"up:{run_step_id}"}
        old["reply_markup"] = {"inline_keyboard": [[legacy]]}

        # The old button: a question with one button per unit, then the upload.
        await staf.press_data(old, f"up:{run_step_id}")
        await world.idle()
        question = staf.messages[-1]
        labels = [b["text"] for b in buttons(question)]
        assert any(POLDAGRI in label for label in labels), labels
        assert any(SEKRETARIAT in label for label in labels), labels
        await staf.press(question, POLDAGRI)
        await world.idle()
        await staf.send_document(workbook(POLDAGRI), "poldagri.xlsx", XLSX)
        await world.idle()
        assert f"langkah 6 — {POLDAGRI}" in staf.latest("Tanda terima")["text"]

        # A file replying to the old message: held, and the same question.
        await staf.send_document(workbook(SEKRETARIAT, 3), "s.xlsx", XLSX, reply_to=old)
        await world.idle()
        question = staf.messages[-1]
        assert any(SEKRETARIAT in b["text"] for b in buttons(question)), staf.texts()[-2:]
        await staf.press(question, SEKRETARIAT)
        await world.idle()
        assert f"langkah 6 — {SEKRETARIAT}" in staf.latest("Tanda terima")["text"]
        assert await stored_units(world) == [POLDAGRI, SEKRETARIAT]
        assert not staf.find("Pilih untuk unit mana")

        # Text replying to the old message: no dead end either, it says how.
        await staf.send_text("sudah ya", reply_to=old)
        await world.idle()
        answer = staf.messages[-1]["text"]
        assert POLDAGRI in answer and SEKRETARIAT in answer and "/tugas" in answer, answer
        assert world.server.errors() == []


async def stored_files(world: World) -> list[tuple[str, str, bytes]]:
    """(unit, original name, bytes) of each stored file, in the order received."""
    async with world.services.db.session() as s:
        rows = (
            await s.exec(
                select(StoredFile, Unit)
                .join(Unit, col(Unit.id) == col(StoredFile.unit_id))
                .order_by(col(StoredFile.id))
            )
        ).all()
    storage = world.services.storage
    return [(u.name, f.original_name, storage.read(f.storage_path)) for f, u in rows]


async def test_a_second_file_while_asking_is_kept_too(tmp_path: Path) -> None:
    """While the bot asks where a file goes, another file is not a silent
    replacement: each gets its own question and both are stored."""
    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        first, second = workbook(SEKRETARIAT, 4), workbook(POLDAGRI, 5)
        await staf.send_document(first, "pertama.xlsx", XLSX)
        await world.idle()
        ask_first = staf.latest("Berkas ini untuk yang mana")
        assert "pertama.xlsx" in ask_first["text"]
        await staf.send_document(second, "kedua.xlsx", XLSX)
        await world.idle()
        ask_second = staf.latest("Berkas ini untuk yang mana")
        assert ask_second is not ask_first and "kedua.xlsx" in ask_second["text"]
        assert "pertama.xlsx" in ask_second["text"]  # the earlier one still waits

        await staf.press(ask_second, POLDAGRI)
        await world.idle()
        await staf.press(ask_first, SEKRETARIAT)
        await world.idle()
        assert await stored_files(world) == [
            (POLDAGRI, "kedua.xlsx", second),
            (SEKRETARIAT, "pertama.xlsx", first),
        ]
        assert len(staf.find("Tanda terima")) == 2

        # Cancelling a question says which held file was not stored.
        await staf.send_document(workbook(SEKRETARIAT, 6), "ketiga.xlsx", XLSX)
        await world.idle()
        await staf.press(staf.latest("Berkas ini untuk yang mana"), "Batal")
        await world.idle()
        assert "ketiga.xlsx" in staf.messages[-1]["text"]
        assert "tidak disimpan" in staf.messages[-1]["text"]
        # A task's upload button pressed while a file is held: the file stays
        # held (the prompt says so) and its own button still places it.
        fourth = workbook(SEKRETARIAT, 8)
        await staf.send_document(fourth, "keempat.xlsx", XLSX)
        await world.idle()
        ask_fourth = staf.latest("Berkas ini untuk yang mana")
        await staf.press(task_of(staf, POLDAGRI), "Unggah berkas")
        await world.idle()
        prompt = staf.messages[-1]["text"]
        assert "Silakan kirim berkas" in prompt and "keempat.xlsx" in prompt, prompt
        assert "masih berlaku" in prompt and "tidak disimpan" not in prompt, prompt
        await staf.press(ask_fourth, SEKRETARIAT)
        await world.idle()
        assert (await stored_files(world))[-1] == (SEKRETARIAT, "keempat.xlsx", fourth)
        assert world.server.errors() == []


# ------------------------------------------------------------- large files

MB = 1024 * 1024


def pdf(size: int) -> bytes:
    """A PDF-named blob of exactly `size` bytes, not all alike."""
    head = b"%PDF-1.4\n"
    body = bytes(range(256)) * (size // 256 + 1)
    return (head + body)[:size]


async def one_unit(world: World) -> FakeUser:
    await world.join("kepala", 1001, "Kepala", "kepala_badan")
    await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
    await world.join("rina", 1003, "Rina", "perencana")
    staf = await world.join("staf", 2001, "Staf", "anggota_tim", SEKRETARIAT)
    await world.to_collection()
    return staf


async def received_events(world: World) -> int:
    from bot.models import Event

    async with world.services.db.session() as s:
        return len((await s.exec(select(Event).where(Event.kind == "file_received"))).all())


def leftovers(world: World) -> list[Path]:
    """Temporary downloads still on disk (there must be none)."""
    return list((world.services.settings.files_dir / ".incoming").glob("*"))


def test_download_limits_from_settings() -> None:
    from bot.settings import Settings

    def limit(**kw: Any) -> int:  # raw values, as from .env (an empty one too)
        return Settings(_env_file=None, **kw).download_limit_bytes

    assert limit() == 20 * MB
    assert limit(max_download_mb=50) == 20 * MB  # Telegram's own servers stop at 20
    assert limit(max_download_mb=5) == 5 * MB
    assert limit(local_bot_api=True) == 200 * MB
    assert limit(local_bot_api=True, max_download_mb=500) == 500 * MB
    assert limit(local_bot_api=True, max_download_mb="") == 200 * MB  # empty in .env


async def test_local_bot_api_server_large_file_streamed_and_limited(tmp_path: Path) -> None:
    """With a local Bot API server a file over 20 MB is taken, read from the
    server's copy on disk in chunks (never whole in memory), and stored
    byte-identical; one over MAX_DOWNLOAD_MB is refused clearly, also when
    the update does not say its size, and nothing is recorded."""
    import tracemalloc

    async with running_bot(tmp_path, local_bot_api=True, max_download_mb=24) as world:
        staf = await one_unit(world)
        big = pdf(22 * MB)
        tracemalloc.start()
        try:
            await staf.send_document(big, "lampiran.pdf", "application/pdf")
            await world.idle()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        receipt = staf.latest("Tanda terima")["text"]
        assert "lampiran.pdf" in receipt and "22.0 MB" in receipt, receipt
        assert peak < 8 * MB, f"{peak / MB:.1f} MB held in memory at once"
        [(unit, name, data)] = await stored_files(world)
        assert (unit, name) == (SEKRETARIAT, "lampiran.pdf") and data == big
        calls = world.server.calls("getFile")
        assert len(calls) == 1

        # Over the limit: refused before fetching when the size is known...
        await staf.send_document(pdf(25 * MB), "besar.pdf", "application/pdf")
        # ...and after getFile says it when the update did not.
        await staf.send_document(pdf(25 * MB), "besar2.pdf", "application/pdf", omit_size=True)
        await world.idle()
        for message in staf.messages[-2:]:
            assert "terlalu besar (batas 24 MB)" in message["text"], message["text"]
            assert "Tidak ada yang dicatat" in message["text"]
        assert len(world.server.calls("getFile")) == 2
        assert len(await stored_files(world)) == 1
        assert await received_events(world) == 2  # the form of step 2, and the big file
        assert leftovers(world) == []
        assert world.server.errors() == []


async def test_telegram_refuses_a_file_too_big_that_had_no_size(tmp_path: Path) -> None:
    """Telegram's own Bot API answers getFile of a file over 20 MB with
    "file is too big": the same clear refusal, nothing recorded."""
    async with running_bot(tmp_path) as world:
        staf = await one_unit(world)
        await staf.send_document(
            b"%PDF", "besar.pdf", "application/pdf", declared_size=30 * MB, omit_size=True
        )
        await world.idle()
        text = staf.messages[-1]["text"]
        assert "terlalu besar (batas 20 MB)" in text and "Tidak ada yang dicatat" in text, text
        assert [r.error for r in world.server.errors()] == ["Bad Request: file is too big"]
        assert await stored_files(world) == [] and await received_events(world) == 1  # the form

        # A file within the limit goes through a temporary file, then is gone.
        await staf.send_document(workbook(SEKRETARIAT, 7), "data.xlsx", XLSX, omit_size=True)
        await world.idle()
        assert staf.latest("Tanda terima")
        [(_, _, data)] = await stored_files(world)
        assert data == workbook(SEKRETARIAT, 7)
        assert leftovers(world) == []


# ------------------------------------------- held files outlive other questions
#
# A small SOP whose Sekretaris step is like step 13 of the seed SOP (files
# optional, Selesai asks for a note: the letter number) followed by a meeting
# step. With two runs open the Sekretaris has two tasks that take a file, so a
# file sent without context is held while the bot asks which task it is for.

SURAT = """
key: surat-keluar
name: Penomoran Surat Keluar
roles:
  kepala_badan: {name: Kepala Badan}
  sekretaris: {name: Sekretaris, supervisor: kepala_badan}
steps:
  - number: 1
    key: perintah
    uraian: Memerintahkan pembuatan surat
    actors: [kepala_badan]
    waktu: 10
    action: confirm
    next: nomor
  - number: 2
    key: nomor
    uraian: Penomoran surat dan lampirannya
    actors: [sekretaris]
    waktu: 15
    petunjuk: Unggah lampiran bila ada, lalu tekan Selesai dan tuliskan nomor surat.
    action: confirm
    files: optional
    note: required
    next: rapat
  - number: 3
    key: rapat
    uraian: Mengundang rapat pembahasan surat
    actors: [sekretaris]
    waktu: 30
    action: meeting
    invitees: [kepala_badan]
    next: null
"""
PDF = "application/pdf"


@asynccontextmanager
async def letters(tmp_path: Path, *titles: str) -> AsyncIterator[tuple[World, FakeUser]]:
    """The bot with the SURAT SOP; the Kepala Badan starts one run per title
    in chat; yields the world and the Sekretaris, who has a task in each."""
    sop_dir = tmp_path / "sop"
    sop_dir.mkdir()
    (sop_dir / "surat-keluar.yaml").write_text(SURAT, encoding="utf-8")
    async with running_bot(tmp_path, sop_dir=sop_dir) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        sekretaris = await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
        for title in titles:
            await kepala.send_command("/mulai", f"surat-keluar: {title}")
            await world.idle()
        yield world, sekretaris


def task_in(person: FakeUser, title: str, number: int) -> dict[str, Any]:
    """The latest task message of a run's step."""
    found = [m for m in person.find(f"Langkah {number}:") if title in m["text"]]
    assert found, person.texts()[-6:]
    return found[-1]


async def stored_in(world: World) -> list[tuple[str, int, str, bytes]]:
    """(run title, step number, name, bytes) of each stored file, in order."""
    async with world.services.db.session() as s:
        rows = (
            await s.exec(
                select(StoredFile, RunStep, Run)
                .join(RunStep, col(RunStep.id) == col(StoredFile.run_step_id))
                .join(Run, col(Run.id) == col(RunStep.run_id))
                .order_by(col(StoredFile.id))
            )
        ).all()
    read = world.services.storage.read
    return [(r.title, rs.number, f.original_name, read(f.storage_path)) for f, rs, r in rows]


async def step_row(world: World, title: str, number: int) -> RunStep:
    async with world.services.db.session() as s:
        return (
            await s.exec(
                select(RunStep)
                .join(Run, col(Run.id) == col(RunStep.run_id))
                .where(Run.title == title, RunStep.number == number)
            )
        ).one()


async def held_rows(world: World) -> list[HeldFiles]:
    async with world.services.db.session() as s:
        return list((await s.exec(select(HeldFiles))).all())


async def test_held_file_survives_a_note_asked_by_selesai(tmp_path: Path) -> None:
    async with letters(tmp_path, "Surat A", "Surat B") as (world, sekretaris):
        lampiran = b"%PDF-1.4 lampiran surat B"
        await sekretaris.send_document(lampiran, "lampiran.pdf", PDF)
        await world.idle()
        ask = sekretaris.latest("Berkas ini untuk yang mana")
        assert "lampiran.pdf" in ask["text"]

        # Selesai on Surat A asks for the letter number; the file stays held.
        await sekretaris.press(task_in(sekretaris, "Surat A", 2), "Selesai")
        await world.idle()
        prompt = sekretaris.latest("Tuliskan catatannya")["text"]
        assert "lampiran.pdf" in prompt and "masih berlaku" in prompt, prompt
        assert len(await held_rows(world)) == 1

        await sekretaris.send_text("005/123/Bakesbangpol/2026")
        await world.idle()
        assert "005/123/Bakesbangpol/2026" in sekretaris.latest("selesai")["text"]
        step_a = await step_row(world, "Surat A", 2)
        assert (step_a.state, step_a.note) == (StepState.done, "005/123/Bakesbangpol/2026")

        # The held file's button still works, and the file lands in Surat B.
        await sekretaris.press(ask, "Surat B")
        await world.idle()
        assert "lampiran.pdf" in sekretaris.latest("Tanda terima")["text"]
        assert await stored_in(world) == [("Surat B", 2, "lampiran.pdf", lampiran)]
        assert await held_rows(world) == []
        assert (await step_row(world, "Surat B", 2)).state == StepState.open
        assert world.server.errors() == []


async def test_held_file_survives_atur_rapat(tmp_path: Path) -> None:
    async with letters(tmp_path, "Surat A", "Surat B", "Surat C") as (world, sekretaris):
        # Surat A moves on to its meeting step.
        await sekretaris.press(task_in(sekretaris, "Surat A", 2), "Selesai")
        await sekretaris.send_text("005/1/2026")
        await world.idle()
        meeting_task = task_in(sekretaris, "Surat A", 3)

        lampiran = b"%PDF-1.4 lampiran surat C"
        await sekretaris.send_document(lampiran, "lampiran-c.pdf", PDF)
        await world.idle()
        ask = sekretaris.latest("Berkas ini untuk yang mana")

        await sekretaris.press(meeting_task, "Atur rapat")
        await world.idle()
        prompt = sekretaris.latest("tempat rapat")["text"]
        assert "lampiran-c.pdf" in prompt and "masih berlaku" in prompt, prompt
        await sekretaris.send_text("03-11-2026 09:00 Ruang Rapat Badan")
        await world.idle()
        assert "Ruang Rapat Badan" in sekretaris.latest("Rapat dijadwalkan")["text"]
        assert (await step_row(world, "Surat A", 3)).state == StepState.done

        await sekretaris.press(ask, "Surat C")
        await world.idle()
        assert "lampiran-c.pdf" in sekretaris.latest("Tanda terima")["text"]
        assert await stored_in(world) == [("Surat C", 2, "lampiran-c.pdf", lampiran)]
        assert world.server.errors() == []


async def test_batal_names_the_question_and_the_held_files(tmp_path: Path) -> None:
    async with letters(tmp_path, "Surat A", "Surat B") as (world, sekretaris):
        await sekretaris.send_document(b"%PDF-1.4 x", "lampiran.pdf", PDF)
        await world.idle()
        ask = sekretaris.latest("Berkas ini untuk yang mana")
        await sekretaris.press(task_in(sekretaris, "Surat A", 2), "Selesai")
        await world.idle()

        await sekretaris.send_command("/batal")
        await world.idle()
        answer = sekretaris.latest("Dibatalkan")["text"]
        assert "Dibatalkan: isian yang ditunggu (catatan yang diminta)" in answer, answer
        assert "lampiran.pdf" in answer and "tidak disimpan" in answer, answer
        assert await held_rows(world) == []
        member = await world.services.members.by_telegram(sekretaris.id)
        assert member is not None and await world.services.waiting.get(member.id) is None
        async with world.services.db.session() as s:
            kind = Event.kind == "held_files_cancelled"
            [event] = (await s.exec(select(Event).where(kind))).all()
        assert event.details["names"] == ["lampiran.pdf"]

        # The old question's button now says plainly that the file is gone.
        query = await sekretaris.press(ask, "Surat B")
        await world.idle()
        alert = sekretaris.answer(query)
        assert alert and "tidak lagi menunggu" in alert["text"], alert
        assert await stored_in(world) == []
        # Nothing else was changed by the cancel.
        assert (await step_row(world, "Surat A", 2)).state == StepState.open
        # A second /batal: nothing left to cancel, said so.
        await sekretaris.send_command("/batal")
        await world.idle()
        assert sekretaris.latest("Tidak ada isian yang sedang ditunggu")
        assert world.server.errors() == []


async def test_a_pick_the_task_refuses_keeps_the_file_held(tmp_path: Path) -> None:
    """The chosen task closed meanwhile: refused, and the file stays held, so
    the question's other button still places it."""
    async with letters(tmp_path, "Surat A", "Surat B") as (world, sekretaris):
        lampiran = b"%PDF-1.4 lampiran"
        await sekretaris.send_document(lampiran, "lampiran.pdf", PDF)
        await world.idle()
        ask = sekretaris.latest("Berkas ini untuk yang mana")
        await sekretaris.press(task_in(sekretaris, "Surat A", 2), "Selesai")
        await sekretaris.send_text("005/9/2026")
        await world.idle()

        query = await sekretaris.press(ask, "Surat A")  # that step is done now
        await world.idle()
        alert = sekretaris.answer(query)
        assert alert and "tidak ada yang berubah" in alert["text"], alert
        assert await stored_in(world) == []
        assert [r.files[0]["name"] for r in await held_rows(world)] == ["lampiran.pdf"]

        await sekretaris.press(ask, "Surat B")
        await world.idle()
        assert await stored_in(world) == [("Surat B", 2, "lampiran.pdf", lampiran)]
        assert world.server.errors() == []


async def test_held_files_are_shown_by_tugas_and_let_go_after_a_day(tmp_path: Path) -> None:
    async with letters(tmp_path, "Surat A", "Surat B") as (world, sekretaris):
        await sekretaris.send_document(b"%PDF-1.4 satu", "satu.pdf", PDF)
        await world.idle()

        # Text typed while a file waits for its choice: told what is awaited.
        await sekretaris.send_text("halo")
        await world.idle()
        assert "satu.pdf" in sekretaris.latest("menunggu Anda memilih tugas")["text"]

        # /tugas asks again, with working buttons.
        await sekretaris.send_command("/tugas")
        await world.idle()
        again = sekretaris.latest("masih menunggu pilihan tugas")
        assert "satu.pdf" in again["text"]
        await sekretaris.press(again, "Surat B")
        await world.idle()
        assert [(t, n) for t, _, n, _ in await stored_in(world)] == [("Surat B", "satu.pdf")]

        # A file nobody places: kept for a day, then let go, told and recorded.
        await sekretaris.send_document(b"%PDF-1.4 dua", "dua.pdf", PDF)
        await world.idle()
        ask = sekretaris.latest("Berkas ini untuk yang mana")
        world.clock.advance(hours=23)
        assert await world.services.waiting.expire_held() == []
        world.clock.advance(hours=2)
        [gone] = await world.services.waiting.expire_held()
        assert gone.names == ["dua.pdf"]
        await world.idle()
        assert "dua.pdf" in sekretaris.latest("tidak dipilih dalam 24 jam")["text"]
        async with world.services.db.session() as s:
            kind = Event.kind == "held_files_expired"
            [event] = (await s.exec(select(Event).where(kind))).all()
        assert event.details["names"] == ["dua.pdf"] and event.actor_id is None
        query = await sekretaris.press(ask, "Surat A")
        await world.idle()
        alert = sekretaris.answer(query)
        assert alert and "tidak lagi menunggu" in alert["text"], alert
        assert len(await stored_in(world)) == 1
        assert world.server.errors() == []


async def test_batal_under_a_file_question_cancels_that_file_only(tmp_path: Path) -> None:
    async with letters(tmp_path, "Surat A", "Surat B") as (world, sekretaris):
        await sekretaris.send_document(b"%PDF-1.4 satu", "satu.pdf", PDF)
        await world.idle()
        ask_one = sekretaris.latest("Berkas ini untuk yang mana")
        await sekretaris.send_document(b"%PDF-1.4 dua", "dua.pdf", PDF)
        await world.idle()
        await sekretaris.press(task_in(sekretaris, "Surat A", 2), "Selesai")
        await world.idle()

        await sekretaris.press(ask_one, "Batal")
        await world.idle()
        answer = sekretaris.latest("Dibatalkan")["text"]
        assert "satu.pdf" in answer and "dua.pdf" in answer.split("masih menunggu")[1], answer
        assert [r.files[0]["name"] for r in await held_rows(world)] == ["dua.pdf"]
        # The note question still stands.
        await sekretaris.send_text("005/7/2026")
        await world.idle()
        assert (await step_row(world, "Surat A", 2)).note == "005/7/2026"

        # Batal under another question (whom to hand a task to) cancels the
        # question only, and says the held file still waits.
        await world.join("wakil", 1003, "Wakil", "sekretaris")
        await sekretaris.press(task_in(sekretaris, "Surat B", 2), "Selesai")
        await sekretaris.send_command("/tugas")
        await world.idle()
        line = next(m for m in reversed(sekretaris.messages) if "Surat B" in m["text"])
        await sekretaris.press(line, "Limpahkan")
        await world.idle()
        await sekretaris.press(sekretaris.latest("kepada siapa"), "Batal")
        await world.idle()
        answer = sekretaris.latest("catatan yang diminta")["text"]
        assert "dua.pdf" in answer and "masih berlaku" in answer, answer
        assert [r.files[0]["name"] for r in await held_rows(world)] == ["dua.pdf"]
        member = await world.services.members.by_telegram(sekretaris.id)
        assert member is not None and await world.services.waiting.get(member.id) is None
        assert world.server.errors() == []


async def test_album_or_note_replying_to_a_task_leaves_a_held_file_held(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        held = workbook(POLDAGRI, 11)
        await staf.send_document(held, "poldagri.xlsx", XLSX)
        await world.idle()
        ask = staf.latest("Berkas ini untuk yang mana")

        # An album sent as a reply to the Sekretariat's task goes there...
        pages = [b"\xff\xd8 halaman satu", b"\xff\xd8 halaman dua"]
        sekretariat = task_of(staf, SEKRETARIAT)
        for page in pages:
            await staf.send_photo(page, reply_to=sekretariat, media_group_id="album-held")
        await world.idle()
        # ... a text reply to a task is kept as a note for it...
        await staf.send_text("mohon dicek", reply_to=task_of(staf, POLDAGRI))
        await world.idle()
        # ... and the held file is still placed by its own button.
        await staf.press(ask, POLDAGRI)
        await world.idle()
        files = await stored_files(world)
        assert [(u, d) for u, _, d in files] == [
            (SEKRETARIAT, pages[0]),
            (SEKRETARIAT, pages[1]),
            (POLDAGRI, held),
        ]
        assert world.server.errors() == []
