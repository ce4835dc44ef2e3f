"""Builders for tests: an office with its officials, ready to run the SOP."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from bot.calendar import WorkCalendar
from bot.clock import FakeClock
from bot.db import Database
from bot.members import MemberInfo, Membership
from bot.office import DEFAULT_UNITS
from bot.run import Engine
from bot.services import register_documents
from bot.sop import SopRegistry
from bot.storage import FileStorage

DATA = Path(__file__).parent / "data"
UNIT_FILES = {
    "Sekretariat": "unit-1-sekretariat.xlsx",
    "Bidang Ideologi dan Wawasan Kebangsaan": "unit-2-bidang-ideologi-dan-wawasan-kebangsaan.xlsx",
    "Bidang Politik Dalam Negeri": "unit-3-bidang-politik-dalam-negeri-salah.xlsx",
    "Bidang Ketahanan Ekonomi, Sosial, Budaya dan Agama": (
        "unit-4-bidang-ketahanan-ekonomi-sosial-budaya-dan-agama.xlsx"
    ),
    "Bidang Kewaspadaan Nasional dan Penanganan Konflik": (
        "unit-5-bidang-kewaspadaan-nasional-dan-penanganan-konflik.xlsx"
    ),
}
FORM = DATA / "form-pengumpulan-data-kinerja.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Office:
    db: Database
    clock: FakeClock
    engine: Engine
    members: Membership
    storage: FileStorage
    people: dict[str, MemberInfo] = field(default_factory=dict)

    def id(self, who: str) -> int:
        return self.people[who].id


async def enrol(
    members: Membership, telegram_id: int, name: str, role: str, unit: str | None = None
) -> MemberInfo:
    token = await members.create_invitation(role, unit=unit)
    info, _ = await members.redeem(token, telegram_id=telegram_id, name=name)
    return info


async def build_office(
    db: Database,
    clock: FakeClock,
    files: Path,
    *,
    sops: SopRegistry | None = None,
    units: list[str] | None = None,
    calendar: WorkCalendar | None = None,
) -> Office:
    sops = sops or SopRegistry.load()
    storage = FileStorage(files)
    engine = Engine(db, sops, calendar or WorkCalendar(), clock, storage)
    register_documents(engine, "Badan Kesatuan Bangsa dan Politik")
    members = Membership(db, sops, clock, on_enrolled=engine.deliver_open_tasks)
    await members.sync_units(units or DEFAULT_UNITS)
    office = Office(db, clock, engine, members, storage)
    if units is None:
        office.people["kepala"] = await enrol(members, 1001, "Drs. Kepala", "kepala_badan")
        office.people["sekretaris"] = await enrol(members, 1002, "Sekretaris", "sekretaris")
        office.people["perencana"] = await enrol(members, 1003, "Perencana Satu", "perencana")
        office.people["perencana2"] = await enrol(members, 1004, "Perencana Dua", "perencana")
        for i, unit in enumerate(DEFAULT_UNITS, start=1):
            office.people[f"unit{i}"] = await enrol(
                members, 2000 + i, f"Staf {i}", "anggota_tim", unit
            )
        office.people["admin"] = await members.ensure_admin(
            telegram_id=9999, name="Admin", username="admin"
        )
    return office


@functools.cache
def workbook(unit: str = "Sekretariat", seed: int = 1) -> bytes:
    """A correctly filled copy of the form (distinct bytes for each seed).

    Cached: openpyxl stamps the save time into the file, so two calls a
    second apart would otherwise give different bytes for the same seed.
    """
    import io

    import openpyxl

    book = openpyxl.load_workbook(FORM)
    sheet = book.active
    sheet["C2"] = unit
    sheet["A6"], sheet["B6"], sheet["C6"], sheet["D6"] = 1, "Sasaran", f"Indikator {seed}", "%"
    sheet["E6"], sheet["F6"], sheet["G6"], sheet["H6"] = 100, 20 + seed, 45, 70
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def to_collection(office: Office, title: str = "TW IV 2026") -> int:
    """Start a run and bring it to step 6 (collection); returns the run id."""
    from datetime import timedelta

    from bot.views import IncomingFile

    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), title)
    [form] = await e.queries.tasks(p("perencana"))
    await e.collection.upload(
        p("perencana"), form.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), form.run_step_id)
    [send] = await e.queries.tasks(p("perencana"))
    await e.steps.complete(p("perencana"), send.run_step_id)
    [invite] = await e.queries.tasks(p("sekretaris"))
    await e.steps.schedule_meeting(
        p("sekretaris"), invite.run_step_id, office.clock.now() + timedelta(hours=3), "Aula"
    )
    meeting = next(t for t in await e.queries.tasks(p("perencana")) if t.number == 5)
    office.clock.advance(hours=3)  # the meeting has started
    await e.steps.complete(p("perencana"), meeting.run_step_id)
    return run.id or 0
