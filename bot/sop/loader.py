"""Reading and checking SOP definition files.

A definition that parses can still be unusable: a step nobody can reach, a
loop nobody can leave, a role nobody defined. Those are found here, before a
run starts, with messages that name the step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot import yamltext
from bot.sop.schema import Action, Sop

_PYDANTIC_MESSAGES = {
    "missing": "wajib diisi",
    "extra_forbidden": "kolom tidak dikenal",
    "greater_than": "harus lebih besar dari {gt}",
    "string_pattern_mismatch": "format tidak sah (huruf kecil, angka, garis bawah)",
    "int_parsing": "harus bilangan bulat",
    "int_type": "harus bilangan bulat",
    "too_short": "tidak boleh kosong",
    "string_too_short": "tidak boleh kosong",
    "string_too_long": "terlalu panjang (paling banyak {max_length} karakter)",
    "literal_error": "harus salah satu dari: {expected}",
    "enum": "harus salah satu dari: {expected}",
}


class SopError(ValueError):
    """A definition that cannot be run; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _step_label(raw: Any, index: int) -> str:
    try:
        step = raw["steps"][index]
        return f"langkah {step.get('number', index + 1)} ({step.get('key', '?')})"
    except (KeyError, IndexError, TypeError, AttributeError):
        return f"langkah ke-{index + 1}"


def _explain(raw: Any, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        where = "SOP"
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            where = _step_label(raw, loc[1])
            loc = loc[2:]
        field = ".".join(str(part) for part in loc) or "(isi)"
        template = _PYDANTIC_MESSAGES.get(item["type"])
        ctx = item.get("ctx") or {}
        message = template.format(**ctx) if template else item["msg"]
        problems.append(f"{where}: {field}: {message}")
    return problems


def _graph_problems(sop: Sop) -> list[str]:
    problems: list[str] = []
    keys = [step.key for step in sop.steps]
    by_key = {step.key: step for step in sop.steps}
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"kunci langkah '{dup}' dipakai lebih dari sekali")
    numbers = [step.number for step in sop.steps]
    for dup_number in sorted({n for n in numbers if numbers.count(n) > 1}):
        problems.append(f"nomor langkah {dup_number} dipakai lebih dari sekali")

    for role_key, role in sop.roles.items():
        if role.supervisor and role.supervisor not in sop.roles:
            problems.append(f"peran '{role_key}': atasan '{role.supervisor}' tidak dikenal")

    def roles_known(label: str, field: str, roles: Iterable[str]) -> None:
        for role in roles:
            if role not in sop.roles:
                problems.append(f"{label}: {field}: peran tidak dikenal '{role}'")

    for step in sop.steps:
        label = f"langkah {step.number} ({step.key})"
        roles_known(label, "actors", step.actors)
        roles_known(label, "to_roles", step.to_roles)
        roles_known(label, "invitees", step.invitees)
        if step.reviewer:
            roles_known(label, "reviewer", [step.reviewer])
        for outcome in step.outcomes:
            roles_known(label, f"outcomes.{outcome.key}.notify", outcome.notify)
            if outcome.note_prompt and outcome.note == "none":
                where = f"{label}: outcomes.{outcome.key}.note_prompt"
                problems.append(f"{where}: pilihan ini tidak meminta catatan")
        if step.note_prompt and (step.note == "none" or step.action == Action.decide):
            problems.append(
                f"{label}: note_prompt: langkah ini tidak meminta catatan"
                + (" (untuk keputusan, tulis di outcomes)" if step.action == Action.decide else "")
            )
        if step.letter and (step.action != Action.confirm or step.note == "none"):
            problems.append(f"{label}: letter: hanya untuk langkah 'confirm' yang menerima catatan")
        if step.draft == "letter" and step.letter is None:
            problems.append(f"{label}: 'draft: letter' butuh blok 'letter:' (perihal surat)")
        if step.letter is not None and step.draft != "letter":
            problems.append(f"{label}: blok 'letter:' hanya berlaku dengan 'draft: letter'")
        for source_key in step.letter.documents_from if step.letter else []:
            if source_key not in keys:
                problems.append(f"{label}: letter.documents_from: langkah '{source_key}' tidak ada")
        for source_key in step.attach_from:
            if source_key not in by_key:
                problems.append(f"{label}: attach_from: langkah '{source_key}' tidak ada")
        for target in step.next_steps():
            if target is not None and target not in by_key:
                problems.append(f"{label}: langkah berikut '{target}' tidak ada")
        if step.action == Action.decide:
            if len(step.outcomes) < 2:
                problems.append(f"{label}: keputusan butuh paling sedikit dua pilihan (outcomes)")
        elif step.outcomes:
            problems.append(f"{label}: outcomes hanya untuk action 'decide'")
        if step.action == Action.collect:
            per_unit = [r for r in step.actors if r in sop.roles and sop.roles[r].per_unit]
            if not per_unit:
                problems.append(f"{label}: 'collect' butuh peran per unit (per_unit: true)")
        if step.action == Action.validate:
            source = by_key.get(step.collection or "")
            if source is None or source.action != Action.collect:
                problems.append(f"{label}: 'collection' harus menunjuk langkah 'collect'")
        if step.action == Action.distribute:
            source = by_key.get(step.files_from or "")
            if source is None:
                problems.append(f"{label}: 'files_from' harus menunjuk langkah yang ada")
            elif source.files == "none" and source.action not in (Action.collect,):
                problems.append(f"{label}: langkah '{source.key}' tidak menghasilkan berkas")
            if not step.to_roles:
                problems.append(f"{label}: 'to_roles' wajib untuk action 'distribute'")
        if step.after_meeting is not None:
            source = by_key.get(step.after_meeting)
            if source is None or source.action != Action.meeting:
                problems.append(f"{label}: 'after_meeting' harus menunjuk langkah 'meeting'")
        if step.action == Action.meeting and not step.invitees:
            problems.append(f"{label}: 'invitees' wajib untuk action 'meeting'")
        if step.draft == "compiled":
            source = by_key.get(step.draft_from or "")
            if source is None or source.action != Action.collect or source.workbook is None:
                problems.append(
                    f"{label}: 'draft_from' harus menunjuk langkah 'collect' yang punya 'workbook'"
                )
        if step.draft is not None and step.action != Action.confirm:
            problems.append(f"{label}: 'draft' hanya untuk action 'confirm'")
    if problems:
        return problems

    # Reachability from the first step.
    seen: set[str] = set()
    todo = [sop.first.key]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(t for t in by_key[key].next_steps() if t is not None)
    for step in sop.steps:
        if step.key not in seen:
            problems.append(f"langkah {step.number} ({step.key}) tidak dapat dicapai")

    # Every step must be able to reach the end; otherwise it is in (or leads
    # into) a loop with no way out.
    can_end = {s.key for s in sop.steps if None in s.next_steps()}
    changed = True
    while changed:
        changed = False
        for step in sop.steps:
            if step.key not in can_end and any(t in can_end for t in step.next_steps()):
                can_end.add(step.key)
                changed = True
    for step in sop.steps:
        if step.key in seen and step.key not in can_end:
            problems.append(
                f"langkah {step.number} ({step.key}) berada dalam putaran tanpa jalan keluar"
            )
    return problems


def parse_sop(text: str, source: str = "<definisi>") -> Sop:
    """Parse and check a definition; raise SopError listing every problem."""
    try:
        raw = yamltext.load(text)
    except yaml.YAMLError as exc:
        raise SopError(source, [f"YAML tidak sah: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise SopError(source, ["isi berkas harus berupa pemetaan (mapping) YAML"])
    try:
        sop = Sop.model_validate(raw)
    except ValidationError as exc:
        raise SopError(source, _explain(raw, exc)) from exc
    problems = _graph_problems(sop)
    if problems:
        raise SopError(source, problems)
    return sop


def load_sop(path: Path) -> Sop:
    return parse_sop(path.read_text(encoding="utf-8"), str(path))


def fingerprint(sop: Sop) -> str:
    """A short hash of the definition, stored with each run."""
    data = sop.model_dump_json().encode()
    return f"{sop.version}+{hashlib.sha256(data).hexdigest()[:12]}"


class SopRegistry:
    """The SOPs this bot can run, by key."""

    def __init__(self, sops: Iterable[Sop] = ()) -> None:
        self._sops: dict[str, Sop] = {}
        for sop in sops:
            self.add(sop)

    def add(self, sop: Sop) -> None:
        if sop.key in self._sops:
            raise SopError(sop.key, [f"SOP '{sop.key}' sudah terdaftar"])
        self._sops[sop.key] = sop

    def replace(self, sop: Sop) -> None:
        """Put an edited definition in place of the one with its key: new
        runs take it; open runs keep the one they started with."""
        if sop.key not in self._sops:
            raise SopError(sop.key, [f"SOP '{sop.key}' belum terdaftar"])
        self._sops[sop.key] = sop

    def get(self, key: str) -> Sop:
        return self._sops[key]

    def __contains__(self, key: object) -> bool:
        return key in self._sops

    def all(self) -> list[Sop]:
        return list(self._sops.values())

    @classmethod
    def load(cls, extra_dir: Path | None = None) -> SopRegistry:
        """The bundled definitions plus any `*.yaml` in `extra_dir`."""
        registry = cls()
        bundled = resources.files("bot.sop") / "definitions"
        for entry in sorted(bundled.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                registry.add(parse_sop(entry.read_text(encoding="utf-8"), entry.name))
        if extra_dir is not None:
            for path in sorted(Path(extra_dir).glob("*.yaml")):
                registry.add(load_sop(path))
        return registry
