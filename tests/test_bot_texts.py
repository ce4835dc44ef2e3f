"""Words people read come from templates and the SOP definition: the
command menu, role names in refusals, and who holds a step in /status."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.chat import command_menu
from bot.members import HelpProfile
from bot.texts import Texts
from tests.fakes.world import running_bot
from tests.test_bot_bad_input import to_collection


def test_command_menu_comes_from_the_template_by_what_roles_allow() -> None:
    services: Any = SimpleNamespace(texts=Texts())
    member = HelpProfile(duties=[], can_start=False, can_report=False, is_admin=False)
    menu = {c.command: c.description for c in command_menu(services, member)}
    assert list(menu)[:2] == ["tugas", "status"]
    assert not {"mulai", "hentikan", "laporan", "undang", "cabut"} & set(menu)
    starter = replace(member, can_start=True, can_report=True)
    assert {"mulai", "hentikan", "laporan"} <= {c.command for c in command_menu(services, starter)}
    admin = replace(starter, is_admin=True)
    assert {"undang", "cabut", "anggota"} <= {c.command for c in command_menu(services, admin)}
    assert [c.command for c in command_menu(services)] == ["bantuan"]  # not enrolled


async def test_people_see_names_not_keys(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await to_collection(world)
        unit1, kepala = p["unit1"], p["kepala"]
        await unit1.send_command("/mulai", "TW IV")
        await world.idle()
        refusal = unit1.messages[-1]["text"]
        assert "hanya untuk: Kepala Badan, Admin" in refusal
        assert "kepala_badan" not in refusal

        await kepala.send_command("/status", "lengkap")
        await world.idle()
        status = kepala.latest("(kegiatan #1)")["text"]
        lines = status.splitlines()
        step2 = lines[lines.index(next(x for x in lines if x.startswith("✅ 2."))) + 1]
        assert "Rina (Kasubbag Perencanaan / Perencana)" in step2
        step6 = lines[lines.index(next(x for x in lines if x.startswith("🟡 6."))) + 1]
        assert "Staf 1 (Sekretariat)" in step6 and "Staf 2 (Bidang Ideologi" in step6
        assert "anggota_tim" not in status and "kepala_badan" not in status
        assert world.server.errors() == []


def test_every_event_the_code_records_has_words() -> None:
    """/riwayat and the monev report word events with templates/event.html.j2;
    an event kind it does not know would show as its raw English key. The
    office-wide ones (invitations, members, strangers) too."""
    import re

    root = Path(__file__).resolve().parent.parent
    recorded: set[str] = set()
    for source in [*root.glob("bot/**/*.py"), *root.glob("handlers/*.py"), *root.glob("jobs/*.py")]:
        text = source.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'(?:_event|append_event|\.event)\(\s*s,\s*"([a-z_]+)"', text))
        recorded |= set(re.findall(r'_audit_attempt\(\s*"([a-z_]+)"', text))
    worded = set(
        re.findall(r'e\.kind == "([a-z_]+)"', (root / "templates/event.html.j2").read_text())
    )
    assert len(recorded) > 20
    assert {"invitation_created", "invitation_refused", "member_joined", "stranger"} <= recorded
    assert recorded <= worded, sorted(recorded - worded)
    template = Texts().env.get_template("event.html.j2")
    for kind in sorted(recorded):
        text = template.render(e=SimpleNamespace(kind=kind, details=defaultdict(str)))
        assert text.strip() and kind not in text, (kind, text)


def drop_reasons(root: Path) -> set[str]:
    """Every reason the code gives for an outbox row it drops: the literal
    ones (`drop(s, row, "...")`, `stale_reason`'s returns and `reason = "..."`)
    and the ones made from an enum's values (run_<state>, file_<settled>)."""
    import re

    from bot.models import RunState
    from bot.run.settle import Settled

    made = {
        'f"run_{run.state.value}"': {f"run_{v.value}" for v in RunState if v != RunState.open},
        'f"file_{kind.value}"': {f"file_{v.value}" for v in Settled},
    }
    reasons: set[str] = set()
    for source in [*root.glob("bot/**/*.py"), *root.glob("jobs/*.py")]:
        text = source.read_text(encoding="utf-8")
        for call in re.findall(r"\bdrop\(\s*s,\s*\w+,\s*(f?\"[^\"]*\"|\w+)", text):
            if call.startswith('"'):
                reasons.add(call.strip('"'))
            elif call.startswith("f"):
                assert call in made, f"{source.name}: a drop reason made as {call}: add its words"
                reasons |= made[call]
        if "async def stale_reason" in text:
            body = text.split("async def stale_reason")[1].split("\nclass ")[0]
            reasons |= set(re.findall(r'return "([a-z_]+)"', body))
            for made_as in re.findall(r"return (f\"[^\"]*\")", body):
                assert made_as in made, f"stale_reason returns {made_as}: add its words"
                reasons |= made[made_as]
        if re.search(r"\bdrop\(\s*s,", text):  # a reason set, then dropped with
            reasons |= set(re.findall(r'\breason = "([a-z_]+)"', text))
    return reasons


def test_every_reason_a_message_was_not_sent_has_words() -> None:
    """'superseded', 'run_paused', 'step_closed' reached /riwayat and the
    monev report as they are: each drop reason reads in Indonesian."""
    root = Path(__file__).resolve().parent.parent
    reasons = drop_reasons(root)
    assert {"superseded", "run_paused", "step_closed", "run_done", "file_accepted"} <= reasons
    assert {"not_late", "assignment_settled", "message_not_sent"} <= reasons
    template = Texts().env.get_template("event.html.j2")
    for reason in sorted(reasons):
        details = {"name": "Andi", "reason": reason}
        text = template.render(e=SimpleNamespace(kind="notification_dropped", details=details))
        assert text.startswith("pesan untuk Andi tidak dikirim: "), text
        assert reason not in text, (reason, text)


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


def test_every_duration_is_worded_by_the_menit_filter() -> None:
    """One duration, one way: '2 jam' in the task, the welcome and the SOP
    summary alike, never a raw '120 menit'."""
    import re

    root = Path(__file__).resolve().parent.parent
    raw = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in sorted((root / "templates").rglob("*.j2"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"\}\}\s*menit", line)
    ]
    assert raw == []
    assert Texts().env.from_string("{{ 120 | menit }}").render() == "2 jam"


def test_a_reason_ending_in_a_full_stop_is_not_doubled() -> None:
    text = Texts().render(
        "errors/step_not_open", detail="unit_closed", unit="Bidang X", by="Rina", reason="dinas."
    )
    assert "Alasan: dinas. Berkas tidak lagi diterima" in text and ".." not in text


def test_a_failed_delivery_is_named_in_indonesian_for_the_admins() -> None:
    """The admin reads what kind of message failed, in words, and what to
    check; Telegram's own words come last, marked as technical."""
    texts = Texts()
    said = texts.render(
        "delivery_failed", name="Andi", template="reminder", error="Forbidden: bot was blocked"
    )
    plain_part = said.split("Keterangan teknis")[0]
    assert "pengingat" in plain_part and "reminder" not in plain_part
    assert "Forbidden: bot was blocked" in said
    unknown = texts.render("delivery_failed", name="Andi", template="something_new", error="x")
    assert "something_new" not in unknown and "pesan bot" in unknown


def test_a_button_label_is_rendered_once_per_set_of_values(monkeypatch: Any) -> None:
    """Texts.label keeps what it rendered: every /tugas line has buttons,
    always the same few labels. The same values give the same words as a
    render, other values their own, and what it keeps is bounded."""
    import bot.texts

    t = Texts()
    rendered: list[str] = []
    get_template = t.env.get_template

    def counted(name: str) -> Any:
        rendered.append(name)
        return get_template(name)

    monkeypatch.setattr(t.env, "get_template", counted)
    done = {"verb": "up", "label": "", "icon": "", "yes": True}
    first = t.label("button", **done)
    assert first == t.render("button", **done) and first
    assert t.label("button", **done) == first
    assert rendered.count("button.html.j2") == 2  # the label once, the render once
    other = t.label("button", **{**done, "label": "Unggah notulen"})
    assert first == "📤 Unggah berkas" and other == "📤 Unggah notulen"
    monkeypatch.setattr(bot.texts, "LABELS_KEPT", 2)
    t.label("button", **{**done, "label": "Tiga"})  # a third: the kept ones go first
    assert len(rendered) == 4
    t.label("button", **done)
    assert len(rendered) == 5
