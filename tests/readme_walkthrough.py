"""Prints the README's walk-through: the real messages of the end-to-end
test world (a faulty workbook from Bidang Politik Dalam Negeri, returned by
the planner, then a reminder), so the README's figures come from a run.

    .venv/bin/python -m tests.readme_walkthrough
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.fakes.world import World, running_bot
from tests.support import DATA, XLSX

UNIT = "Bidang Politik Dalam Negeri"
FAULTY = DATA / "unit-3-bidang-politik-dalam-negeri-salah.xlsx"
NOTE = "Nama unit kosong; TW I dan II belum diisi; realisasi TW III harus angka."


def shown(message: dict[str, Any]) -> str:
    """A message as the README shows it: its text (or caption), then its buttons."""
    body = message.get("text") or message.get("caption") or ""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    labels = "  ".join(f"[{b['text']}]" for row in rows for b in row)
    return body + (f"\n   {labels}" if labels else "")


async def capture(world: World) -> list[str]:
    await world.join("kepala", 1001, "Kepala", "kepala_badan")
    await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
    rina = await world.join("rina", 1003, "Rina Perencana", "perencana")
    andi = await world.join("andi", 2003, "Andi (Poldagri)", "anggota_tim", UNIT)
    await world.to_collection()
    await world.idle()
    task = andi.latest("Langkah 6")
    await andi.send_document(FAULTY, FAULTY.name, XLSX)
    await world.idle()
    receipt = andi.latest("Tanda terima")
    review = rina.latest(f"Berkas masuk dari {UNIT}")
    parts = [shown(task), shown(receipt), shown(review)]
    await rina.press(review, "Kembalikan")
    await world.idle()
    await rina.send_text(NOTE)
    await world.idle()
    returned = andi.latest("Berkas dikembalikan")
    # Tuesday 07:31 WIB: late, and the office open.
    world.clock.set(datetime(2026, 11, 3, 7, 31, tzinfo=ZoneInfo("Asia/Jakarta")))
    await world.services.deadlines.sweep()
    await world.idle()
    reminder = andi.latest("Pengingat")
    return [*parts, shown(returned), shown(reminder)]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_bot(Path(tmp)) as world:
            for text in await capture(world):
                print(text, end="\n\n")


if __name__ == "__main__":
    asyncio.run(main())
