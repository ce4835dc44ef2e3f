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
        assert len(await stored_files(world)) == 2
        assert world.server.errors() == []
