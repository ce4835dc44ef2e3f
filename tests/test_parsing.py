"""Reading what people type and what buttons carry."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.verbs import Verb, decode, encode, pattern
from handlers.parsing import parse_meeting, parse_moment, split_title
from handlers.uploads import document_name

WIB = ZoneInfo("Asia/Jakarta")


def test_meeting_text() -> None:
    assert parse_meeting("25-11-2026 09:00 Ruang Rapat", WIB) == (
        datetime(2026, 11, 25, 9, 0, tzinfo=WIB),
        "Ruang Rapat",
    )
    assert parse_meeting("25/11/2026 pukul 13.30 WIB, Aula Lt. 2", WIB) == (
        datetime(2026, 11, 25, 13, 30, tzinfo=WIB),
        "Aula Lt. 2",
    )
    for bad in ("besok jam 9", "31-02-2026 09:00 Aula", "25-11-2026 09:00", ""):
        assert parse_meeting(bad, WIB) is None
    assert parse_moment("27-11-2026 14:00", WIB) == datetime(2026, 11, 27, 14, 0, tzinfo=WIB)
    assert parse_moment("27-11-2026", WIB) is None


def test_title_and_note() -> None:
    assert split_title("Data Kinerja TW III | Mohon segera") == (
        "Data Kinerja TW III",
        "Mohon segera",
    )
    assert split_title("Data Kinerja TW III") == ("Data Kinerja TW III", None)


def test_button_data_round_trip_and_forgery() -> None:
    assert decode(encode(Verb.dec, 12, 1)) == ("dec", (12, 1))
    for forged in (None, "", "dec:12", "dec:12:x", "rm:1", "ok:-1", "ok:" + "9" * 60, "ok:1:2"):
        assert decode(forged) is None
    with pytest.raises(AssertionError):
        encode(Verb.to, 10**30, 10**30)  # never more than Telegram's 64 bytes
    # A verb's pattern lets through what decode reads, and nothing else.
    assert pattern(Verb.up).match("up:3") and pattern(Verb.up).match("up:3:4")
    for other in ("up", "up:3:4:5", "up:x", "upload:3", "up:3:", "mok:3"):
        assert not pattern(Verb.up).match(other)
    assert pattern(Verb.cancel).match("cancel") and pattern(Verb.cancel).match("cancel:5")


def test_a_document_without_a_name_keeps_its_type() -> None:
    assert document_name(None, "application/pdf") == "dokumen.pdf"
    assert (
        document_name(
            "laporan", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        == "laporan.xlsx"
    )
    assert document_name("a.xlsx", "application/octet-stream") == "a.xlsx"
