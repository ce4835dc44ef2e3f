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

    run = await e.runs.start(atasan.id, "Cuti Desember 2026")
    tasks = await e.queries.tasks(a.id)
    assert [(t.number, t.unit_name) for t in tasks] == [(2, "Unit A")]
    step2 = tasks[0].run_step_id
    ra = await e.collection.upload(a.id, step2, IncomingFile(b"%PDF a", "a.pdf", "application/pdf"))
    rb = await e.collection.upload(b.id, step2, IncomingFile(b"%PDF b", "b.pdf", "application/pdf"))
    assert rb.step_closed
    await e.collection.review(kepeg.id, ra.file.id, accept=True)
    await e.collection.review(kepeg.id, rb.file.id, accept=True)
    [decision] = await e.queries.tasks(atasan.id)
    assert decision.number == 4 and [x.verb for x in decision.actions] == ["dec", "dec"]
    await e.steps.decide(atasan.id, decision.run_step_id, "tolak", note="Tanggal bentrok")
    [again] = await e.queries.tasks(atasan.id)
    assert (again.number, again.action) == (1, "confirm")
    await e.steps.complete(atasan.id, again.run_step_id)
    step2b = (await e.queries.tasks(a.id))[0].run_step_id
    assert step2b != step2
    for who, name in ((a, "a2.pdf"), (b, "b2.pdf")):
        r = await e.collection.upload(
            who.id, step2b, IncomingFile(b"%PDF 2", name, "application/pdf")
        )
        await e.collection.review(kepeg.id, r.file.id, accept=True)
    [decision] = await e.queries.tasks(atasan.id)
    await e.steps.decide(atasan.id, decision.run_step_id, "setuju")
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
    await office.engine.runs.start(atasan.id, "Cuti Desember 2026")
    async with db.session() as s:
        told = (
            await s.exec(select(Notification).where(Notification.template == "collection_started"))
        ).all()
    assert [n.member_id for n in told] == [kepeg.id]
    assert [a["verb"] for a in told[0].context["actions"]] == ["view", "cls"]
    assert told[0].context["units"] == 2 and told[0].context["number"] == 2


RAPAT = """
key: rapat-koordinasi
name: Rapat Koordinasi Keuangan
roles:
  bendahara: {name: Bendahara}
  pimpinan: {name: Pimpinan}
  staf: {name: Staf Unit, per_unit: true, supervisor: bendahara}
steps:
  - number: 1
    key: susun
    uraian: Menyusun bahan rapat anggaran
    actors: [bendahara]
    kelengkapan: Bahan Rapat Anggaran
    waktu: 30
    action: confirm
    files: required
    accept: [pdf]
    next: bagikan
  - number: 2
    key: bagikan
    uraian: Membagikan bahan rapat
    actors: [bendahara]
    kelengkapan: Bahan Rapat Anggaran
    waktu: 10
    action: distribute
    files_from: susun
    to_roles: [staf, pimpinan]
    next: undang
  - number: 3
    key: undang
    uraian: Mengundang peserta rapat anggaran
    actors: [bendahara]
    waktu: 10
    action: meeting
    invitees: [pimpinan, staf]
    next: rapat
  - number: 4
    key: rapat
    uraian: Melaksanakan rapat anggaran
    actors: [pimpinan]
    waktu: 60
    action: confirm
    after_meeting: undang
    next: null
"""

# Words only the seed SOP (Mekanisme Pengumpulan Data Kinerja) uses.
SEED_WORDS = ("data kinerja", "kepala badan", "perencana", "sekretaris", "bidang", "bakesbangpol")


async def test_messages_of_another_sop_name_none_of_the_seed_sop(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    """Every message a run of another SOP queues, rendered as its person
    reads it (the distributed document and the meeting invitation too),
    speaks of that SOP only: generic templates name no seed-SOP words."""
    from datetime import timedelta

    from bot.models import Notification
    from bot.texts import Texts, plain

    sops = SopRegistry([parse_sop(RAPAT)])
    office = await build_office(db, clock, tmp_path, sops=sops, units=["Unit A"])
    bendahara = await enrol(office.members, 1, "Bendahara", "bendahara")
    pimpinan = await enrol(office.members, 2, "Pimpinan", "pimpinan")
    await enrol(office.members, 3, "Staf A", "staf", "Unit A")
    e = office.engine
    await e.runs.start(bendahara.id, "Rapat Anggaran Desember")
    [prepare] = await e.queries.tasks(bendahara.id)
    await e.collection.upload(
        bendahara.id,
        prepare.run_step_id,
        IncomingFile(b"%PDF bahan", "bahan.pdf", "application/pdf"),
    )
    await e.steps.complete(bendahara.id, prepare.run_step_id)
    [share] = await e.queries.tasks(bendahara.id)
    await e.steps.complete(bendahara.id, share.run_step_id)
    [invite] = await e.queries.tasks(bendahara.id)
    await e.steps.schedule_meeting(
        bendahara.id, invite.run_step_id, clock.now() + timedelta(hours=1), "Ruang Keuangan"
    )
    clock.advance(hours=1)
    [meeting] = await e.queries.tasks(pimpinan.id)
    await e.steps.complete(pimpinan.id, meeting.run_step_id)

    texts = Texts("Asia/Jakarta")
    async with db.session() as s:
        rows = (await s.exec(select(Notification).order_by(Notification.id))).all()
    templates = {n.template for n in rows}
    assert {"task", "distributed", "meeting_invitation", "run_done"} <= templates
    for n in rows:
        text = plain(texts.render(n.template, **n.context)).lower()
        assert not [w for w in SEED_WORDS if w in text], (n.template, text)
    shared = next(n for n in rows if n.template == "distributed")
    shared_text = texts.render("distributed", **shared.context)
    assert shared_text.startswith("📄 <b>Bahan Rapat Anggaran</b>")
    invitation = next(n for n in rows if n.template == "meeting_invitation")
    assert "Rapat Koordinasi Keuangan" in texts.render("meeting_invitation", **invitation.context)
