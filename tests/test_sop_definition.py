"""The SOP as data: the seed file, the checker and `sopbot sop check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.sop import Action, SopError, SopRegistry, parse_sop

SEED = Path(__file__).parent.parent / "bot/sop/definitions/pengumpulan-data-kinerja.yaml"

MINI = """
key: mini
name: Mini
roles:
  a: {name: A}
  b: {name: B, supervisor: a}
steps:
  - {number: 1, key: satu, uraian: Satu, actors: [a], waktu: 10, next: dua}
  - {number: 2, key: dua, uraian: Dua, actors: [b], waktu: 20, next: null}
"""


def test_seed_matches_the_sheet() -> None:
    sop = SopRegistry.load().get("pengumpulan-data-kinerja")
    assert [s.number for s in sop.steps] == list(range(1, 16))
    assert [s.waktu for s in sop.steps] == [
        15,
        60,
        25,
        30,
        120,
        120,
        240,
        15,
        15,
        60,
        25,
        10,
        15,
        25,
        10,
    ]
    assert sop.total_waktu == 785
    assert sop.step("rapat").actors == ["kepala_badan", "sekretaris", "perencana"]
    assert sop.step("kumpul_data").action == Action.collect
    decision = sop.step("koreksi_kepala")
    assert {o.key: o.next for o in decision.outcomes} == {
        "setuju": "tanda_tangan",
        "koreksi": "teruskan_koreksi",
    }
    assert sop.step("teruskan_koreksi").next == "sampaikan_data"
    assert sop.step("pengarsipan").next is None
    assert sop.roles["anggota_tim"].per_unit


def problems(text: str) -> list[str]:
    with pytest.raises(SopError) as info:
        parse_sop(text, "uji.yaml")
    return info.value.problems


def test_unknown_role_is_named() -> None:
    found = problems(MINI.replace("actors: [b]", "actors: [c]"))
    assert found == ["langkah 2 (dua): actors: peran tidak dikenal 'c'"]


def test_missing_time_standard_is_named() -> None:
    found = problems(MINI.replace("waktu: 20, ", ""))
    assert found == ["langkah 2 (dua): waktu: wajib diisi"]


def test_unreachable_step() -> None:
    text = MINI.replace("next: dua}", "next: null}")
    assert problems(text) == ["langkah 2 (dua) tidak dapat dicapai"]


def test_loop_without_exit() -> None:
    text = MINI.replace("waktu: 20, next: null", "waktu: 20, next: satu")
    found = problems(text)
    assert "langkah 1 (satu) berada dalam putaran tanpa jalan keluar" in found
    assert "langkah 2 (dua) berada dalam putaran tanpa jalan keluar" in found


def test_unknown_next_and_bad_yaml() -> None:
    assert problems(MINI.replace("next: dua", "next: tiga")) == [
        "langkah 1 (satu): langkah berikut 'tiga' tidak ada"
    ]
    assert problems("key: [")[0].startswith("YAML tidak sah")


def test_cli_check_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sop", "check", str(SEED)]) == 0
    out = capsys.readouterr().out
    assert "Mekanisme Pengumpulan Data Kinerja" in out
    assert "Jumlah langkah: 15" in out
    assert "Total waktu standar: 13 jam 5 menit kerja" in out  # 785 minutes, as everywhere
    assert "waktu: 2 jam;" in out and "120 menit" not in out
    assert "koreksi -> teruskan_koreksi" in out
    # The meeting a step waits for is shown on that step's line, and only there.
    lines = out.splitlines()
    waits = [i for i, line in enumerate(lines) if "setelah rapat" in line]
    assert len(waits) == 1
    assert lines[waits[0] - 1].strip().startswith("5. ")
    assert lines[waits[0]].endswith("; setelah rapat: undangan_rapat")
    assert 'catatan wajib: "Tuliskan nomor surat pengantar"' in out
    assert 'catatan wajib (koreksi): "Tuliskan catatan koreksi' in out


def test_cli_check_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINI.replace("actors: [b]", "actors: [c]"))
    assert main(["sop", "check", str(bad)]) == 1
    assert "peran tidak dikenal 'c'" in capsys.readouterr().err


def test_after_meeting_must_name_a_meeting_step() -> None:
    text = MINI.replace("waktu: 20, next: null", "waktu: 20, next: null, after_meeting: satu")
    assert problems(text) == ["langkah 2 (dua): 'after_meeting' harus menunjuk langkah 'meeting'"]
    assert SopRegistry.load().get("pengumpulan-data-kinerja").step("rapat").after_meeting == (
        "undangan_rapat"
    )


def test_decision_buttons_have_an_emoji_from_the_file_or_by_marks() -> None:
    step = SopRegistry.load().get("pengumpulan-data-kinerja").step("koreksi_kepala")
    assert [o.icon for o in step.outcomes] == ["✅", "↩️"]
    own = step.outcomes[0].model_copy(update={"emoji": "🖊"})
    assert own.icon == "🖊"


def test_note_prompt_only_where_a_note_is_asked() -> None:
    sop = SopRegistry.load().get("pengumpulan-data-kinerja")
    assert sop.step("surat_pengantar").note_prompt == "Tuliskan nomor surat pengantar"
    assert sop.step("penggandaan").note_prompt is None  # the generic request
    text = MINI.replace(
        "waktu: 20, next: null", "waktu: 20, next: null, note: none, note_prompt: Nomor"
    )
    assert problems(text) == ["langkah 2 (dua): note_prompt: langkah ini tidak meminta catatan"]
    empty = MINI.replace("waktu: 20, next: null", "waktu: 20, next: null, note_prompt: ''")
    assert problems(empty) == ["langkah 2 (dua): note_prompt: tidak boleh kosong"]


def test_a_cover_letter_is_a_draft_kind() -> None:
    """Step 13 drafts its letter as `draft: letter` with its `letter:`
    settings; either without the other is named."""
    sop = SopRegistry.load().get("pengumpulan-data-kinerja")
    step = sop.step("surat_pengantar")
    assert step.draft == "letter" and step.letter is not None
    text = MINI.replace("waktu: 20, next: null", "waktu: 20, next: null, draft: letter")
    assert problems(text) == [
        "langkah 2 (dua): 'draft: letter' butuh blok 'letter:' (perihal surat)"
    ]
    alone = MINI.replace(
        "waktu: 20, next: null", "waktu: 20, next: null, letter: {perihal: Pengiriman data}"
    )
    assert problems(alone) == [
        "langkah 2 (dua): blok 'letter:' hanya berlaku dengan 'draft: letter'"
    ]
