"""Long messages lose nothing: /status with several runs, a long correction
note on a returned file, a workbook with many mistakes. Every message stays
within Telegram's limits (the fake server refuses one that does not)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import openpyxl
import pytest

from bot.texts import CAPTION_LIMIT, TEXT_LIMIT, Texts, clip, split_html, visible_length
from tests.fakes.world import running_bot
from tests.support import FORM, XLSX
from tests.test_bot_bad_input import to_collection


def sixty_mistakes() -> bytes:
    """The form with its unit name empty and 59 numbers written as words:
    60 findings."""
    book = openpyxl.load_workbook(FORM)
    sheet = book.active
    sheet["C2"] = None
    for row in range(6, 21):
        sheet[f"C{row}"] = f"Indikator {row}"
    cells = [f"{c}{r}" for r in range(6, 21) for c in "EFGHI"][:59]
    for i, ref in enumerate(cells):
        sheet[ref] = f"belum ada data {i}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def words(message: dict[str, object]) -> str:
    return str(message.get("text") or message.get("caption") or "")


async def test_long_texts_are_split_never_cut(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        unit1, rina, kepala = p["unit1"], p["rina"], p["kepala"]

        # A workbook with 60 mistakes: the receipt names the first ones and
        # says how many more; it still ends with its advice.
        await unit1.send_document(sixty_mistakes(), "data-unit.xlsx", XLSX)
        await world.idle()
        receipt = words(unit1.latest("Tanda terima"))
        assert "dan 50 temuan lainnya" in receipt
        assert "Jika perlu, perbaiki lalu kirim ulang" in receipt

        # The planner's copy: the file, its caption within the limit, and
        # whatever does not fit after it.
        review = next(m for m in rina.documents() if "Berkas masuk" in words(m))
        assert visible_length(review["caption"]) <= CAPTION_LIMIT
        shown = rina.messages[rina.messages.index(review) :]
        assert any("dan 50 temuan lainnya" in words(m) for m in shown)
        assert any("Terima berkas ini" in words(m) for m in shown)

        # A 1000-character correction note reaches the unit whole.
        note = ("Baris 6 harus angka & <bukan> teks; " * 40)[:1000].strip()
        await rina.press(review, "Kembalikan")
        await world.idle()
        await rina.send_text(note)
        await world.idle()
        returned = unit1.latest("Berkas dikembalikan")
        assert "document" in returned
        later = unit1.messages[unit1.messages.index(returned) :]
        assert any(note in words(m) for m in later), [words(m)[-80:] for m in later]

        # Three open runs: /status lengkap gives each its own message, whole.
        await kepala.send_command("/mulai", "TW I 2027")
        await kepala.send_command("/mulai", "TW II 2027")
        await world.idle()
        await kepala.send_command("/status", "lengkap")
        await world.idle()
        for run_id in (1, 2, 3):
            status = words(kepala.latest(f"(kegiatan #{run_id})"))
            assert "15. Pengarsipan" in status, status[-200:]
        assert world.server.errors() == []


def test_split_keeps_tags_balanced_and_content_whole() -> None:
    text = "<b>Judul</b>\n\n" + "<i>" + "kata &amp; kata " * 400 + "</i>\n\nAkhir"
    pieces = split_html(text, 1000)
    assert len(pieces) > 1
    assert all(visible_length(p) <= 1000 for p in pieces)
    for p in pieces:
        assert p.count("<i>") == p.count("</i>") and p.count("<b>") == p.count("</b>")
        assert "&amp" not in p.replace("&amp;", "")  # no entity cut in half
    joined = " ".join(pieces).replace("</i>", "").replace("<i>", "")
    assert joined.count("kata &amp; kata") == 400 and joined.endswith("Akhir")
    assert TEXT_LIMIT == 4096


def test_clip_is_safe_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    clipped = clip("<b>" + "kata &amp; " * 600 + "</b>", 100)
    assert clipped.startswith("<b>") and clipped.endswith("</b>…")
    assert visible_length(clipped) <= 100 and not re.search(r"&[a-z]*$", clipped[:-5])
    texts = Texts()
    with caplog.at_level(logging.WARNING, logger="bot.texts"):
        short = texts.render("collection", max_chars=50, run_title="x" * 200, deliveries=[])
    assert visible_length(short) <= 50 and "clipped" in caplog.text


def test_a_history_page_of_long_notes_fits_one_message() -> None:
    """A history page is edited in place, so it must stay one message: notes
    are shortened there (the monev report words them whole)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    texts = Texts()
    note = "catatan panjang " * 62
    events = [
        SimpleNamespace(
            kind="file_returned",
            details={"unit": "Sekretariat", "version": i, "note": note},
            at=datetime(2026, 11, 2, 1, tzinfo=UTC),
            actor_id=None,
        )
        for i in range(10)
    ]
    page = texts.render(
        "history", run=SimpleNamespace(title="TW III"), events=events, names={}, offset=0, total=10
    )
    assert visible_length(page) <= TEXT_LIMIT and "…" in page
    assert all(f"Sekretariat v{i} dikembalikan" in page for i in range(10))
    whole = texts.env.get_template("event.html.j2").render(e=events[0])
    assert note.strip() in whole
