"""A different, small SOP runs through the same engine: nothing about the
seed SOP is hard-coded."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.audit import verify_chain
from bot.clock import FakeClock
from bot.db import Database
from bot.models import Run, RunState, RunStep
from bot.sop import SopRegistry, parse_sop
from bot.views import IncomingFile
from tests.support import build_office, enrol

CUTI = """
key: permohonan-cuti
name: Permohonan Cuti Pegawai
roles:
  pegawai: {name: Pegawai, per_unit: true, supervisor: atasan}
  atasan: {name: Atasan Langsung}
  kepegawaian: {name: Subbag Kepegawaian, supervisor: atasan}
steps:
  - number: 1
    key: ajukan
    uraian: Mengajukan permohonan cuti
    actors: [atasan]
    waktu: 10
    action: confirm
    next: berkas
  - number: 2
    key: berkas
    uraian: Menghimpun formulir cuti tiap unit
    actors: [pegawai]
    waktu: 30
    action: collect
    reviewer: kepegawaian
    accept: [pdf]
    next: periksa
  - number: 3
    key: periksa
    uraian: Memeriksa formulir
    actors: [kepegawaian]
    waktu: 30
    action: validate
    collection: berkas
    next: putus
  - number: 4
    key: putus
    uraian: Memutuskan
    actors: [atasan]
    waktu: 15
    action: decide
    outcomes:
      - {key: tolak, label: Tolak, note: required, next: ajukan}
      - {key: setuju, label: Setujui, next: null}
"""


async def test_second_sop_runs(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    sops = SopRegistry([parse_sop(CUTI)])
    office = await build_office(db, clock, tmp_path, sops=sops, units=["Unit A", "Unit B"])
    m = office.members
    atasan = await enrol(m, 1, "Atasan", "atasan")
    kepeg = await enrol(m, 2, "Kepegawaian", "kepegawaian")
    a = await enrol(m, 3, "Pegawai A", "pegawai", "Unit A")
    b = await enrol(m, 4, "Pegawai B", "pegawai", "Unit B")
    e = office.engine

    run = await e.start_run(atasan.id, "Cuti Desember 2026")
    tasks = await e.tasks(a.id)
    assert [(t.number, t.unit_name) for t in tasks] == [(2, "Unit A")]
    step2 = tasks[0].run_step_id
    ra = await e.upload(a.id, step2, IncomingFile(b"%PDF a", "a.pdf", "application/pdf"))
    rb = await e.upload(b.id, step2, IncomingFile(b"%PDF b", "b.pdf", "application/pdf"))
    assert rb.step_closed
    await e.review(kepeg.id, ra.file.id, accept=True)
    await e.review(kepeg.id, rb.file.id, accept=True)
    [decision] = await e.tasks(atasan.id)
    assert decision.number == 4 and [x.verb for x in decision.actions] == ["dec", "dec"]
    await e.decide(atasan.id, decision.run_step_id, "tolak", note="Tanggal bentrok")
    [again] = await e.tasks(atasan.id)
    assert (again.number, again.action) == (1, "confirm")
    await e.complete(atasan.id, again.run_step_id)
    step2b = (await e.tasks(a.id))[0].run_step_id
    assert step2b != step2
    for who, name in ((a, "a2.pdf"), (b, "b2.pdf")):
        r = await e.upload(who.id, step2b, IncomingFile(b"%PDF 2", name, "application/pdf"))
        await e.review(kepeg.id, r.file.id, accept=True)
    [decision] = await e.tasks(atasan.id)
    await e.decide(atasan.id, decision.run_step_id, "setuju")
    async with db.session() as s:
        assert (await s.get(Run, run.id)).state == RunState.done
        rows = (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
        assert sorted((r.number, r.iteration) for r in rows) == [
            (1, 1),
            (1, 2),
            (2, 1),
            (2, 2),
            (3, 1),
            (3, 2),
            (4, 1),
            (4, 2),
        ]
        assert (await verify_chain(s)).ok


async def test_the_reviewer_named_in_the_sop_hears_when_a_collection_opens(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    """Who is told comes from the step's `reviewer` (here Kepegawaian), with
    the buttons to follow and to close the collection."""
    from bot.models import Notification

    sops = SopRegistry([parse_sop(CUTI)])
    office = await build_office(db, clock, tmp_path, sops=sops, units=["Unit A", "Unit B"])
    atasan = await enrol(office.members, 1, "Atasan", "atasan")
    kepeg = await enrol(office.members, 2, "Kepegawaian", "kepegawaian")
    await enrol(office.members, 3, "Pegawai A", "pegawai", "Unit A")
    await office.engine.start_run(atasan.id, "Cuti Desember 2026")
    async with db.session() as s:
        told = (
            await s.exec(select(Notification).where(Notification.template == "collection_started"))
        ).all()
    assert [n.member_id for n in told] == [kepeg.id]
    assert [a["verb"] for a in told[0].context["actions"]] == ["view", "cls"]
    assert told[0].context["units"] == 2 and told[0].context["number"] == 2
