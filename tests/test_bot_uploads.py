"""Files from a phone: where a file goes when the sender belongs to two
units, files held while the bot asks, and large files with a local Bot API
server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.models import StoredFile, Unit
from tests.fakes.people import FakeUser
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
                .join(Unit, Unit.id == StoredFile.unit_id)  # type: ignore[arg-type]
                .order_by(StoredFile.id)  # type: ignore[arg-type]
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
                .join(Unit, Unit.id == StoredFile.unit_id)  # type: ignore[arg-type]
                .order_by(StoredFile.id)  # type: ignore[arg-type]
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
        # So does pressing a task's upload button while a file is held.
        await staf.send_document(workbook(SEKRETARIAT, 8), "keempat.xlsx", XLSX)
        await world.idle()
        await staf.press(task_of(staf, SEKRETARIAT), "Unggah berkas")
        await world.idle()
        prompt = staf.messages[-1]["text"]
        assert "Silakan kirim berkas" in prompt and "keempat.xlsx" in prompt, prompt
        assert len(await stored_files(world)) == 2
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

    def limit(**kw: object) -> int:
        return Settings(_env_file=None, **kw).download_limit_bytes  # type: ignore[call-arg]

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
