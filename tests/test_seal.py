"""The audit chain anchored outside its database: a signed head in a witness
file finds a cut tail, a wiped log and a chain rewritten with fresh hashes,
which the chain alone takes for intact."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from bot.audit import append_event, event_hash, verify_chain
from bot.calendar import WorkCalendar
from bot.cli import main
from bot.clock import FakeClock
from bot.db import Database
from bot.models import ChainHead, Event, Notification
from bot.seal import SealConflict, Sealer, SealError, SealKey, Witness, sign
from bot.texts import Texts
from tests.support import Office

WIB = ZoneInfo("Asia/Jakarta")


def sealer_at(db: Database, clock: FakeClock, folder: Path, secret: str | None = None) -> Sealer:
    return Sealer(
        db,
        clock,
        WorkCalendar(),
        SealKey(folder / "audit.key", secret),
        Witness(folder / "audit-witness.jsonl"),
    )


@pytest.fixture
def sealer(db: Database, clock: FakeClock, tmp_path: Path) -> Sealer:
    return sealer_at(db, clock, tmp_path / "data")


async def events(db: Database, clock: FakeClock, count: int) -> None:
    for i in range(count):
        async with db.transaction() as s:
            await append_event(s, "uji", at=clock.advance(minutes=1), details={"i": i})


async def cut_after(db: Database, seq: int) -> None:
    """What an intruder with the database does: drop the tail, set the head back."""
    async with db.transaction() as s:
        await s.exec(text(f"DELETE FROM event WHERE seq > {seq}"))
        last = (await s.exec(select(Event).where(Event.seq == seq))).first()
        head = await s.get(ChainHead, 1)
        assert head is not None
        head.seq, head.hash = seq, last.hash if last else ""
        s.add(head)


async def chain_ok(db: Database) -> bool:
    async with db.session() as s:
        return (await verify_chain(s)).ok


def words(check: object) -> str:
    return Texts().env.get_template("cli/audit_verify.txt.j2").render(c=check).strip()


async def test_the_key_is_made_once_owner_only(sealer: Sealer, db: Database, clock) -> None:
    await events(db, clock, 2)
    assert sealer.key.load(create=False) is None  # verify never makes one
    sealed = await sealer.seal()
    assert sealed is not None and sealed.new and sealed.seal.seq == 2
    path = sealer.key.path
    assert path.stat().st_mode & 0o777 == 0o600
    key = path.read_bytes()
    assert sealer.key.load(create=True) == key.strip()
    line = json.loads(sealer.witness.path.read_text().splitlines()[0])
    assert line["mac"] == sign(key.strip(), 2, line["hash"])
    path.chmod(0o644)
    with pytest.raises(SealError, match="chmod 600"):
        sealer.key.load(create=False)


async def test_a_key_from_the_environment_and_a_too_short_one(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await events(db, clock, 1)
    setting = sealer_at(db, clock, tmp_path, secret="k" * 40)
    assert (await setting.seal()) is not None
    assert not (tmp_path / "audit.key").exists()  # nothing written for a set key
    assert (await setting.check()).status == "intact"
    with pytest.raises(SealError, match="AUDIT_KEY terlalu pendek"):
        await sealer_at(db, clock, tmp_path, secret="pendek").seal()


async def test_an_intact_chain_passes_with_events_after_its_seal(
    sealer: Sealer, db: Database, clock: FakeClock
) -> None:
    assert (await sealer.check()).status == "unsealed"
    await events(db, clock, 5)
    await sealer.seal()
    again = await sealer.seal()
    assert again is not None and not again.new  # an unchanged head: no second line
    await events(db, clock, 3)
    check = await sealer.check()
    assert check.ok and check.status == "intact"
    assert (check.checked, check.seal_seq, check.last_seq) == (8, 5, 8)
    said = words(check)
    assert "cocok dengan segel #5" in said and "3 peristiwa sesudahnya belum disegel" in said


async def test_a_cut_tail_with_the_head_set_back_is_named(
    sealer: Sealer, db: Database, clock: FakeClock
) -> None:
    await events(db, clock, 6)
    await sealer.seal()
    await cut_after(db, 4)
    assert await chain_ok(db)  # the chain alone cannot tell
    check = await sealer.check()
    assert not check.ok and check.status == "cut"
    assert (check.last_seq, check.seal_seq) == (4, 6)
    assert "catatan setelah #4 hilang (segel #6" in words(check)


async def test_a_wiped_log_is_named(sealer: Sealer, db: Database, clock: FakeClock) -> None:
    await events(db, clock, 3)
    await sealer.seal()
    async with db.transaction() as s:
        await s.exec(text("DELETE FROM event"))
        await s.exec(text("DELETE FROM chainhead"))
    assert await chain_ok(db)
    check = await sealer.check()
    assert check.status == "cut" and check.last_seq == 0
    assert "semua catatan hilang (segel #3" in words(check)


async def test_a_chain_rewritten_with_fresh_hashes_is_named(
    sealer: Sealer, db: Database, clock: FakeClock
) -> None:
    await events(db, clock, 5)
    await sealer.seal()
    await events(db, clock, 2)
    # Change event 2, then hash every event again so each link holds.
    async with db.transaction() as s:
        rows = (await s.exec(select(Event).order_by(col(Event.seq)))).all()
        prev = "0" * 64
        for ev in rows:
            if ev.seq == 2:
                ev.details = {"i": 99}
            ev.prev_hash = prev
            ev.hash = event_hash(
                seq=ev.seq,
                run_id=ev.run_id,
                at=ev.at,
                actor_id=ev.actor_id,
                kind=ev.kind,
                details=ev.details,
                prev_hash=prev,
            )
            prev = ev.hash
            s.add(ev)
        head = await s.get(ChainHead, 1)
        assert head is not None
        head.hash = prev
        s.add(head)
    assert await chain_ok(db)
    check = await sealer.check()
    assert check.status == "rewritten" and check.seal_seq == 5
    assert "DITULIS ULANG: hash catatan #5" in words(check)


async def test_an_older_seal_finds_a_cut_the_newest_was_made_over(
    sealer: Sealer, db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    """Cut to #3 after a seal of #6, then three new events: #6 exists again
    with another hash. A witness line the bot would not have written (the
    bot refuses to seal over a cut) is made by hand with the key."""
    await events(db, clock, 6)
    await sealer.seal()
    await cut_after(db, 3)
    await events(db, clock, 4)
    with pytest.raises(SealConflict) as conflict:
        await sealer.seal()
    assert conflict.value.finding.status == "rewritten"
    key = sealer.key.load(create=False)
    assert key is not None
    async with db.session() as s:
        head = await s.get(ChainHead, 1)
    assert head is not None
    forged = {"seq": head.seq, "hash": head.hash, "at": None, "key": None}
    with sealer.witness.path.open("a") as out:
        out.write(json.dumps({**forged, "mac": sign(key, head.seq, head.hash)}) + "\n")
    check = await sealer.check()
    assert check.status == "rewritten" and check.seal_seq == 6


async def test_a_forged_witness_line_and_another_key_are_named(
    sealer: Sealer, db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await events(db, clock, 4)
    await sealer.seal()
    path = sealer.witness.path
    line = json.loads(path.read_text())
    path.write_text(json.dumps({**line, "seq": 3}) + "\n")
    check = await sealer.check()
    assert check.status == "bad_seal" and not check.other_key and check.seal_line == 1
    assert "HMAC tidak cocok (baris saksi diubah)" in words(check)
    path.write_text(json.dumps(line) + "\n")
    assert (await sealer.check()).ok
    other = sealer_at(db, clock, tmp_path / "other")
    await other.seal()
    other.key.path.write_text("f" * 64 + "\n")
    check = await other.check()
    assert check.status == "bad_seal" and check.other_key
    path.write_text("{bukan json\n")
    assert (await sealer.check()).status == "bad_line"
    sealer.key.path.unlink()
    path.write_text(json.dumps(line) + "\n")
    assert (await sealer.check()).status == "no_key"


async def test_a_copy_pasted_from_the_chat_is_a_witness(
    sealer: Sealer, db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await events(db, clock, 5)
    sealed = await sealer.seal()
    assert sealed is not None
    chat = Texts().render("audit_seal", seq=5, hash=sealed.seal.hash[:16])
    copy = tmp_path / "dari-chat.txt"
    copy.write_text(f"Admin Bot, [30.11.26 09:00]\n{chat.replace('<code>', '')}\n")
    sealer.witness.path.unlink()  # the intruder removed the bot's own witness too
    await cut_after(db, 2)
    assert (await sealer.check()).status == "unsealed"
    check = await sealer.check(Witness(copy))
    assert check.status == "cut" and (check.seal_seq, check.last_seq) == (5, 2)


async def test_seals_are_owed_each_working_day_and_at_a_run_end(office: Office, tmp_path) -> None:
    clock, e = office.clock, office.engine
    sealer = sealer_at(office.db, clock, tmp_path / "data")
    assert await sealer.owed()  # events and no seal yet
    sealed = await sealer.seal_if_owed()
    assert sealed is not None and sealed.admins == 1
    assert not await sealer.owed()
    run = await e.runs.start(office.id("kepala"), "TW III")
    assert not await sealer.owed()  # the head moved, but the day's seal is made
    clock.advance(minutes=5)
    await e.runs.cancel(office.id("kepala"), run.id or 0, "salah judul")
    assert await sealer.owed()  # a run ended
    await sealer.seal_if_owed()
    await e.runs.start(office.id("kepala"), "TW IV")
    clock.set(datetime(2026, 11, 3, 7, 0, tzinfo=WIB))
    assert not await sealer.owed()  # before Tuesday's opening
    clock.set(datetime(2026, 11, 3, 7, 30, tzinfo=WIB))
    assert await sealer.owed()
    await sealer.seal_if_owed()
    await e.runs.start(office.id("kepala"), "TW V")
    clock.set(datetime(2026, 11, 7, 9, 0, tzinfo=WIB))  # Saturday: no working day
    assert not await sealer.owed()
    async with office.db.session() as s:
        rows = (
            await s.exec(select(Notification).where(Notification.template == "audit_seal"))
        ).all()
    assert len(rows) == 3 and all(r.silent for r in rows)
    assert {r.member_id for r in rows} == {office.id("admin")}
    said = Texts().render("audit_seal", **rows[0].context)
    assert said.startswith("🔏 Segel catatan #") and len(rows[0].context["hash"]) == 16


async def test_the_bot_does_not_seal_over_a_cut_and_tells_the_admins(
    office: Office, tmp_path
) -> None:
    sealer = sealer_at(office.db, office.clock, tmp_path / "data")
    await sealer.seal()
    async with office.db.session() as s:
        head = await s.get(ChainHead, 1)
    assert head is not None
    await cut_after(office.db, head.seq - 2)
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.advance(days=1)
    with pytest.raises(SealConflict) as conflict:
        await sealer.seal_if_owed()
    await sealer.alert(conflict.value)
    await sealer.alert(conflict.value)  # once per seal, however often the job finds it
    async with office.db.session() as s:
        rows = (
            await s.exec(select(Notification).where(Notification.template == "audit_conflict"))
        ).all()
    assert len(rows) == 1 and not rows[0].silent
    said = Texts().render("audit_conflict", **rows[0].context)
    assert f"tidak cocok dengan segel #{head.seq}" in said and "sopbot audit verify" in said
    assert len(Witness(tmp_path / "data" / "audit-witness.jsonl").seals()) == 1


async def test_cli_seal_and_verify_exit_codes(
    clock: FakeClock, tmp_path: Path, monkeypatch, capsys
) -> None:
    from bot.migrate import upgrade

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sopbot.db'}")
    await upgrade(db)
    await events(db, clock, 4)
    await db.dispose()
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AUDIT_KEY", raising=False)
    monkeypatch.chdir(tmp_path)

    def sopbot(*args: str) -> int:
        return main(["audit", *args])

    assert (await asyncio.to_thread(sopbot, "verify")) == 0
    assert "Belum ada segel" in capsys.readouterr().out
    assert (await asyncio.to_thread(sopbot, "seal")) == 0
    assert "Segel catatan #4: " in capsys.readouterr().out
    assert (await asyncio.to_thread(sopbot, "seal")) == 0
    assert "sudah disegel: catatan #4" in capsys.readouterr().out
    assert (await asyncio.to_thread(sopbot, "verify")) == 0
    assert "cocok dengan segel #4" in capsys.readouterr().out
    witness = tmp_path / "data" / "audit-witness.jsonl"
    copy = tmp_path / "salinan.jsonl"
    copy.write_bytes(witness.read_bytes())
    await cut_after(db, 1)
    await db.dispose()
    assert (await asyncio.to_thread(sopbot, "verify")) == 1
    assert "catatan setelah #1 hilang" in capsys.readouterr().out
    assert (await asyncio.to_thread(sopbot, "seal")) == 1  # not over a cut
    assert "Segel tidak dibuat" in capsys.readouterr().err
    witness.unlink()
    assert (await asyncio.to_thread(sopbot, "verify", "--witness", str(copy))) == 1
    assert "catatan setelah #1 hilang" in capsys.readouterr().out
    assert (await asyncio.to_thread(sopbot, "verify", "--witness", "hilang.jsonl")) == 2
    assert "tidak ditemukan" in capsys.readouterr().err
    (tmp_path / "kosong.txt").write_text("\n")
    assert (await asyncio.to_thread(sopbot, "verify", "--witness", "kosong.txt")) == 2
    assert "tidak berisi segel" in capsys.readouterr().err
    os.chmod(tmp_path / "data" / "audit.key", 0o644)
    assert (await asyncio.to_thread(sopbot, "verify", "--witness", str(copy))) == 1
    assert "chmod 600" in capsys.readouterr().err


async def test_the_job_seals_and_the_admin_hears_it_quietly(tmp_path: Path) -> None:
    from tests.fakes.world import ADMIN_ID, running_bot

    # The tests' world has no seal job unless asked for (AUDIT_SEAL_INTERVAL).
    (tmp_path / "tanpa").mkdir()
    async with running_bot(tmp_path / "tanpa") as world:
        assert world.app.job_queue is not None
        assert world.app.job_queue.get_jobs_by_name("audit-seal") == ()
    async with running_bot(tmp_path, audit_seal_interval=90) as world:
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await world.idle()
        assert world.app.job_queue is not None
        [job] = world.app.job_queue.get_jobs_by_name("audit-seal")
        assert job.job.trigger.interval == timedelta(seconds=90)
        await job.run(world.app)  # the minute's check, now
        await world.idle()
        await job.run(world.app)  # nothing new: no second line
        await world.idle()
        [seal] = Witness(world.services.settings.witness_file).seals()
        sent = [c for c in world.server.calls("sendMessage") if "Segel catatan" in c["text"]]
        assert len(sent) == 1 and sent[0]["chat_id"] == str(ADMIN_ID)
        assert sent[0]["disable_notification"] == "true"
        assert f"Segel catatan #{seal.seq}: {seal.hash[:16]}…" in admin.last["text"]
        assert (await world.services.seals.check()).status == "intact"
        assert world.server.errors() == []
