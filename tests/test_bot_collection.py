"""Steps 2-7 in chat: the form handed to the units, the units' deliveries
(single files and albums), their review, and closing units that cannot
deliver."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.botapi import Person as FakeUser
from bot.models import Event, StoredFile
from tests.fakes.world import World, running_bot
from tests.support import FORM, UNIT_FILES, XLSX, workbook

UNITS = list(UNIT_FILES)


def with_buttons(person: FakeUser, needle: str) -> dict[str, Any]:
    found = [m for m in person.find(needle) if m.get("reply_markup")]
    assert found, f"{person.first_name}: no message with buttons and {needle!r}"
    return found[-1]


def labels(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def office(world: World, units: int = 3) -> dict[str, FakeUser]:
    """The officials and one member for each of the first `units` units."""
    p = {
        "kepala": await world.join("kepala", 1001, "Kepala", "kepala_badan"),
        "sekretaris": await world.join("sekretaris", 1002, "Sekretaris", "sekretaris"),
        "rina": await world.join("rina", 1003, "Rina", "perencana"),
        "dodi": await world.join("dodi", 1004, "Dodi", "perencana"),
    }
    for i, unit in enumerate(UNITS[:units], start=1):
        p[f"unit{i}"] = await world.join(f"unit{i}", 2000 + i, f"Staf {i}", "anggota_tim", unit)
    return p


async def events(world: World, kind: str) -> list[Event]:
    async with world.services.db.session() as s:
        return list((await s.exec(select(Event).where(Event.kind == kind))).all())


async def test_only_the_latest_form_goes_to_the_units_and_says_its_version(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world, units=2)
        await p["kepala"].send_command("/mulai", "TW III")
        await world.idle()
        task2 = with_buttons(p["rina"], "Langkah 2")
        await p["rina"].send_document(b"PK draft form", "form-lama.xlsx", XLSX, reply_to=task2)
        await world.idle()
        await p["rina"].send_document(FORM, FORM.name, XLSX, reply_to=task2)
        await world.idle()
        assert "Versi: 2 (menggantikan versi 1)" in p["rina"].latest("Tanda terima")["text"]
        await p["rina"].press(task2, "Selesai")
        await world.idle()
        await p["dodi"].press(with_buttons(p["dodi"], "Langkah 3"), "Kirim ke semua unit")
        await world.idle()
        for key in ("unit1", "unit2"):
            docs = p[key].documents()
            assert len(docs) == 1, [d.get("caption") for d in docs]
            assert f"{FORM.name} (versi 2)" in docs[0]["caption"]
            sent = world.server.file_bytes(docs[0]["document"]["file_id"])
            assert sent == FORM.read_bytes()
        [distributed] = await events(world, "distributed")
        assert len(distributed.details["files"]) == 1
        assert world.server.errors() == []


async def test_identical_resend_and_a_replaced_version_review(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world)
        await world.to_collection()
        unit1, rina = p["unit1"], p["rina"]
        first = workbook(UNITS[0], 1)
        await unit1.send_document(first, "kinerja.xlsx", XLSX)
        await world.idle()
        await unit1.send_document(first, "kinerja-lagi.xlsx", XLSX)
        await world.idle()
        said = unit1.messages[-1]["text"]
        assert "Berkas yang sama sudah diterima (versi 1," in said, said
        async with world.services.db.session() as s:
            files = (await s.exec(select(StoredFile))).all()
            assert len([f for f in files if f.unit_id]) == 1
        assert len(rina.find("Berkas masuk dari Sekretariat")) == 1
        assert len(await events(world, "file_resent")) == 1

        # A new version: the old review message loses its buttons, and a
        # press on it (from a stale copy) says it was replaced.
        old = copy.deepcopy(with_buttons(rina, "Berkas masuk dari Sekretariat"))
        await unit1.send_document(workbook(UNITS[0], 2), "kinerja-v2.xlsx", XLSX)
        await world.idle()
        assert "Versi: 2" in unit1.latest("Tanda terima")["text"]
        reviews = rina.find("Berkas masuk dari Sekretariat")
        assert len(reviews) == 2
        assert not reviews[0].get("reply_markup") and reviews[1].get("reply_markup")
        pressed = await rina.press(old, "Terima")
        await world.idle()
        answer = rina.answer(pressed)
        assert answer and "sudah diganti versi 2 dari Sekretariat" in answer["text"], answer
        # The Sekretariat's files go to Rina, its reviewer on duty; Dodi, the
        # other planner, opens them from his collection message.
        dodi = p["dodi"]
        assert not dodi.find("Berkas masuk dari Sekretariat")
        await dodi.press(with_buttons(dodi, "Pengumpulan dimulai"), "Lihat berkas unit")
        await world.idle()
        dodi_copy = dodi.documents()[-1]
        assert dodi_copy.get("reply_markup") and "kinerja-v2.xlsx" in dodi_copy["caption"]
        await rina.press(reviews[1], "Terima")
        await world.idle()
        assert rina.latest("diterima")
        # The other planner's copy of the review loses its buttons too.
        assert not dodi.documents()[-1].get("reply_markup")
        assert world.server.errors() == []


async def test_close_one_unit_then_the_rest_and_the_units_are_told(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world)
        await world.to_collection()
        rina, unit2 = p["rina"], p["unit2"]
        await p["unit1"].send_document(workbook(UNITS[0]), "kinerja.xlsx", XLSX)
        await world.idle()
        await rina.send_command("/tugas")
        await world.idle()
        await rina.press(with_buttons(rina, "Langkah 6"), "Tutup dengan alasan")
        await world.idle()
        choice = rina.messages[-1]
        # The prompt names the units that have not delivered, and a button each.
        assert "belum mengirim: " + ", ".join(UNITS[1:]) in choice["text"], choice["text"]
        assert "tidak dapat lagi mengirim" in choice["text"]
        assert labels(choice)[:4] == [f"🔒 {u}"[:62] for u in UNITS[1:]]
        assert "Semua unit yang belum mengirim (4)" in labels(choice)[4]

        await rina.press(choice, UNITS[1])
        await world.idle()
        assert UNITS[1] in rina.messages[-1]["text"]
        await rina.send_text("Bidang sedang dinas luar sampai akhir bulan.")
        await world.idle()
        ack = rina.messages[-1]["text"]
        assert f"ditutup untuk: {UNITS[1]}" in ack and "Masih ditunggu: " in ack, ack
        told = unit2.latest("Pengumpulan ditutup")["text"]
        assert "Ditutup oleh Rina" in told and "dinas luar sampai akhir bulan" in told
        assert not p["unit3"].find("Pengumpulan ditutup")
        assert not [m for m in rina.find("Tugas baru") if "Langkah 7" in m["text"]]

        # The closed unit's task loses its buttons (they cannot act any
        # more) and says so; a file sent anyway gets a clear answer.
        [task6] = unit2.find("Langkah 6")
        assert world.server.shown_markups()[(unit2.id, task6["message_id"])] is None
        assert "🔒 Ditutup oleh Rina" in (task6.get("text") or task6["caption"])
        assert p["unit3"].find("Langkah 6") and with_buttons(p["unit3"], "Langkah 6")
        await unit2.send_document(workbook(UNITS[1]), "telat.xlsx", XLSX)
        await world.idle()
        assert "sudah ditutup oleh Rina" in unit2.messages[-1]["text"]
        assert not unit2.find("tidak ada tugas Anda yang meminta berkas")

        # Then all the others at once: the step is done.
        await rina.press(with_buttons(rina, "Langkah 6"), "Tutup dengan alasan")
        await world.idle()
        choice = rina.messages[-1]
        await rina.press(choice, "Semua unit yang belum mengirim (3)")
        await world.idle()
        assert ", ".join(UNITS[2:]) in rina.messages[-1]["text"]
        await rina.send_text("Batas waktu internal habis.")
        await world.idle()
        assert "Langkah 6 selesai" in rina.latest("ditutup untuk")["text"]
        assert "Batas waktu internal habis" in p["unit3"].latest("Pengumpulan ditutup")["text"]
        assert [m for m in rina.find("Tugas baru") if "Langkah 7" in m["text"]]
        closed = await events(world, "unit_closed")
        assert sorted(e.details["unit"] for e in closed) == sorted(UNITS[1:])
        reasons = {e.details["unit"]: e.details["reason"] for e in closed}
        assert reasons[UNITS[1]].startswith("Bidang sedang dinas luar")
        assert reasons[UNITS[4]] == "Batas waktu internal habis."
        assert world.server.errors() == []


async def test_an_album_is_one_delivery_reviewed_with_every_page(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world, units=5)
        await world.to_collection()
        rina = p["rina"]
        for i in range(1, 5):
            await p[f"unit{i}"].send_document(workbook(UNITS[i - 1]), f"u{i}.xlsx", XLSX)
            await world.idle()
        pages = [b"\xff\xd8\xff\xe0 halaman %d " % n * 40 for n in range(1, 4)]
        await p["unit5"].send_album(pages)
        await world.idle()
        # One receipt, edited as the pages came: one alert for the album.
        receipts = p["unit5"].find("Tanda terima")
        assert len(receipts) == 1
        assert "Halaman diterima: 3" in receipts[-1]["text"]
        # Not complete yet: no "step done", no review, the step still open.
        assert not any("langkah ini selesai" in r["text"] for r in receipts)
        assert not rina.find("Berkas masuk dari " + UNITS[4])
        assert not [m for m in rina.find("Tugas baru") if "Langkah 7" in m["text"]]

        # A quiet moment after the last page the album is complete; the
        # deadline timer is set for that moment.
        deadlines = world.services.deadlines
        assert await deadlines.next_moment() == world.clock.now() + timedelta(seconds=5)
        world.clock.advance(seconds=6)
        await world.services.deadlines.sweep()
        await world.idle()
        # Complete: said under the same receipt (an edit), not a new message.
        assert len(p["unit5"].find("Tanda terima")) == 1
        done = p["unit5"].latest("Album lengkap")["text"]
        assert "Tanda terima album" in done and "3 halaman" in done and "versi 1" in done
        assert "langkah ini selesai" in done
        [review] = rina.find("Berkas masuk dari " + UNITS[4])
        assert "album 3 halaman" in review["text"] and labels(review)
        albums = [m for m in rina.messages if m.get("media_group_id")]
        assert len(albums) == 3
        shown = [world.server.file_bytes(m["photo"][-1]["file_id"]) for m in albums]
        assert shown == pages
        assert [m for m in rina.find("Tugas baru") if "Langkah 7" in m["text"]]

        # "Lihat berkas unit" shows every page, then one review for the album.
        await rina.press(with_buttons(rina, "Langkah 7"), "Lihat berkas unit")
        await world.idle()
        assert "album 3 halaman, v1" in rina.latest("Berkas unit:")["text"]
        assert len([m for m in rina.messages if m.get("media_group_id")]) == 6
        again = rina.messages[-1]
        assert "album 3 halaman" in again["text"] and labels(again)

        before = len(rina.messages)
        pressed = await rina.press(again, "Terima")
        await world.idle()
        answered = rina.answer(pressed)
        assert answered is not None
        ack = answered["text"]
        assert "Album 3 halaman" in ack and "semua halamannya" in ack, ack
        # No new message for the presser: the press itself is answered, and
        # the review message the outbox sent says who accepted it.
        assert len(rina.messages) == before
        assert "diterima oleh" in rina.latest("Berkas masuk dari")["text"]
        # The sender reads it under the album's one receipt (no new alert).
        told = p["unit5"].latest("Tanda terima album")["text"]
        assert "Diterima oleh Rina (semua 3 halaman)" in told
        assert p["unit5"].find("Berkas diterima") == []
        async with world.services.db.session() as s:
            photos = (await s.exec(select(StoredFile).where(StoredFile.kind == "photo"))).all()
        assert [f.review_state.value for f in photos] == ["accepted"] * 3
        assert len(await events(world, "album_complete")) == 1
        assert world.server.errors() == []


async def test_an_album_is_complete_when_the_sender_moves_on(tmp_path: Path) -> None:
    """A member of two units sends an album for one and then a file for the
    other: the album is complete at once, no quiet period needed."""
    from tests.test_bot_uploads import POLDAGRI, SEKRETARIAT, task_of, two_unit_member

    async with running_bot(tmp_path) as world:
        staf = await two_unit_member(world)
        rina = world.people["rina"]
        sekretariat = task_of(staf, SEKRETARIAT)
        for n in (1, 2):
            await staf.send_photo(
                b"\xff\xd8 hal %d" % n * 30, reply_to=sekretariat, media_group_id="g-move"
            )
        await world.idle()
        assert not rina.find(f"Berkas masuk dari {SEKRETARIAT}")
        await staf.send_document(
            workbook(POLDAGRI), "poldagri.xlsx", XLSX, reply_to=task_of(staf, POLDAGRI)
        )
        await world.idle()
        [review] = rina.find(f"Berkas masuk dari {SEKRETARIAT}")
        assert "album 2 halaman" in review["text"]
        assert "Album lengkap: 2 halaman" in staf.latest("Tanda terima album")["text"]
        assert rina.find(f"Berkas masuk dari {POLDAGRI}")
        assert world.server.errors() == []


async def test_an_album_reviewed_before_it_counted_complete_closes_the_step(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        p = await office(world, units=5)
        await world.to_collection()
        rina = p["rina"]
        for i in range(1, 5):
            await p[f"unit{i}"].send_document(workbook(UNITS[i - 1]), f"u{i}.xlsx", XLSX)
        await p["unit5"].send_album([b"\xff\xd8 a" * 20, b"\xff\xd8 b" * 20])
        await world.idle()
        await rina.send_command("/tugas")
        await world.idle()
        await rina.press(with_buttons(rina, "Langkah 6"), "Lihat berkas unit")
        await world.idle()
        pressed = await rina.press(with_buttons(rina, "album 2 halaman"), "Terima")
        await world.idle()
        answered = rina.answer(pressed)
        assert answered is not None and "Album 2 halaman" in answered["text"]
        assert [m for m in rina.find("Tugas baru") if "Langkah 7" in m["text"]]
        world.clock.advance(seconds=6)
        await world.services.deadlines.sweep()
        await world.idle()
        assert not rina.find(f"Berkas masuk dari {UNITS[4]}")  # reviewed already
        assert world.server.errors() == []
