"""Words people read come from templates and the SOP definition: the
command menu, role names in refusals, and who holds a step in /status."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.app import command_menu
from bot.clock import SystemClock
from bot.db import Database
from bot.members import Membership
from bot.sop import SopRegistry, parse_sop
from bot.texts import Texts
from tests.fakes.world import running_bot
from tests.test_bot_bad_input import to_collection
from tests.test_second_sop import CUTI


def test_command_menu_comes_from_the_template_and_the_sop() -> None:
    sops = SopRegistry([parse_sop(CUTI)])
    services: Any = SimpleNamespace(
        sops=sops,
        # Names roles only: the database is never opened.
        members=Membership(Database("sqlite+aiosqlite://"), sops, SystemClock()),
        texts=Texts(),
    )
    menu = {c.command: c.description for c in command_menu(services)}
    assert list(menu)[:2] == ["tugas", "status"]
    assert menu["mulai"] == "Mulai kegiatan baru (Atasan Langsung/admin)"


async def test_people_see_names_not_keys(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        menu = {c["command"]: c["description"] for c in world.server.commands}
        assert menu["mulai"] == "Mulai kegiatan baru (Kepala Badan/admin)"

        p = await to_collection(world)
        unit1, kepala = p["unit1"], p["kepala"]
        await unit1.send_command("/mulai", "TW IV")
        await world.idle()
        refusal = unit1.messages[-1]["text"]
        assert "hanya untuk: Kepala Badan, Admin" in refusal
        assert "kepala_badan" not in refusal

        await kepala.send_command("/status")
        await world.idle()
        status = kepala.latest("(kegiatan #1)")["text"]
        lines = status.splitlines()
        step2 = lines[lines.index(next(x for x in lines if x.startswith("✅ 2."))) + 1]
        assert "Rina (Kasubbag Perencanaan / Perencana)" in step2
        step6 = lines[lines.index(next(x for x in lines if x.startswith("🟡 6."))) + 1]
        assert "Staf 1 (Sekretariat)" in step6 and "Staf 2 (Bidang Ideologi" in step6
        assert "anggota_tim" not in status and "kepala_badan" not in status
        assert world.server.errors() == []


def test_every_event_the_code_records_for_a_run_has_words() -> None:
    """/riwayat and the monev report word events with templates/event.html.j2;
    an event kind it does not know would show as its raw English key."""
    import re

    root = Path(__file__).resolve().parent.parent
    recorded: set[str] = set()
    for source in [*root.glob("bot/**/*.py"), *root.glob("handlers/*.py")]:
        text = source.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'(?:_event|append_event|\.event)\(\s*s,\s*"([a-z_]+)"', text))
    worded = set(
        re.findall(r'e\.kind == "([a-z_]+)"', (root / "templates/event.html.j2").read_text())
    )
    # Office-wide events have no run, so no run's history shows them.
    runless = {"invitation_created", "member_joined", "member_revoked"}
    assert len(recorded) > 20
    assert recorded - runless <= worded


def test_history_words_for_admin_and_collection_events() -> None:
    texts = Texts()
    template = texts.env.get_template("event.html.j2")
    cases = {
        "due_moved": {"step": 6, "new": "2026-11-03T03:00:00+00:00"},
        "reminders_paused": {},
        "unit_closed": {"unit": "Sekretariat", "reason": "Kepala bidang cuti"},
        "album_complete": {"unit": "Sekretariat", "version": 2, "files": [7, 8, 9]},
        "file_resent": {"unit": "Sekretariat", "version": 1},
        "member_blocked_bot": {"name": "Andi"},
    }
    words = {
        kind: template.render(e=SimpleNamespace(kind=kind, details=details))
        for kind, details in cases.items()
    }
    assert words["due_moved"] == "batas waktu langkah 6 diubah menjadi 3 November 2026 10:00 WIB"
    assert words["unit_closed"] == "pengumpulan Sekretariat ditutup: <i>Kepala bidang cuti</i>"
    assert words["album_complete"] == "album Sekretariat v2 lengkap (3 halaman)"
    assert "tetap" in words["file_resent"] and "Andi memblokir bot" in words["member_blocked_bot"]
    assert words["reminders_paused"] == "pengingat dijeda"


def test_a_reason_ending_in_a_full_stop_is_not_doubled() -> None:
    text = Texts().render(
        "errors/step_not_open", detail="unit_closed", unit="Bidang X", by="Rina", reason="dinas."
    )
    assert "Alasan: dinas. Berkas tidak lagi diterima" in text and ".." not in text
