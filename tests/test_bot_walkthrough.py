"""The whole seed SOP, walked in chat by the people who carry it out."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import openpyxl
from sqlmodel import select

from bot.audit import verify_chain
from bot.botapi import Person as FakeUser
from bot.models import Attendance, Event, ReviewState, Run, RunState, RunStep, StoredFile
from bot.texts import minutes_text
from tests.fakes.world import ADMIN_ID, World, running_bot
from tests.support import DATA, FORM, UNIT_FILES, XLSX

PDF = "application/pdf"


def with_buttons(person: FakeUser, needle: str) -> dict[str, Any]:
    """The newest message containing `needle` that still has buttons."""
    found = [m for m in person.find(needle) if m.get("reply_markup")]
    assert found, f"{person.first_name}: no message with buttons and {needle!r}"
    return found[-1]


# Unit 3's corrected copy, the one it sends again after its faulty one is returned.
PERBAIKAN = DATA / "unit-3-bidang-politik-dalam-negeri-perbaikan.xlsx"


async def enrol_everyone(world: World) -> dict[str, FakeUser]:
    p = {
        "kepala": await world.join("kepala", 1001, "Drs. Kepala", "kepala_badan"),
        "sekretaris": await world.join("sekretaris", 1002, "Sekretaris", "sekretaris"),
        "rina": await world.join("rina", 1003, "Rina", "perencana"),
        "dodi": await world.join("dodi", 1004, "Dodi", "perencana"),
    }
    for i, unit in enumerate(UNIT_FILES, start=1):
        p[f"unit{i}"] = await world.join(f"unit{i}", 2000 + i, f"Staf {i}", "anggota_tim", unit)
    return p


async def test_whole_sop_in_chat(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await enrol_everyone(world)
        idle = world.idle

        # Step 1: the head starts the run; the disposition note goes on.
        await p["kepala"].send_command("/mulai", "Data Kinerja Triwulan III 2026 | Mohon segera")
        await idle()
        started = p["kepala"].latest("dimulai")["text"]
        # The head is told where the run now stands, by name.
        assert "Langkah 2" in started and "kini di tangan: Rina" in started
        assert "Dodi" in started and "Belum ada pelaksana" not in started
        task2 = with_buttons(p["rina"], "Langkah 2")
        assert "Mohon segera" in task2["text"] and "Batas waktu" in task2["text"]
        assert with_buttons(p["dodi"], "Langkah 2")

        # Step 2: the planner uploads the blank form, then presses Selesai.
        upload = await p["rina"].press(task2, "Unggah berkas")
        await idle()
        asked = p["rina"].answer(upload)  # on the press: the file comes next
        assert asked is not None and "Silakan kirim berkas" in asked["text"]
        await p["rina"].send_document(FORM, FORM.name, XLSX)
        await idle()
        receipt = p["rina"].latest("Tanda terima")["text"]
        assert hashlib.sha256(FORM.read_bytes()).hexdigest()[:12] in receipt
        await p["rina"].press(task2, "Selesai")
        await idle()

        # Step 3: the other planner sends the form to every unit member.
        await p["dodi"].press(with_buttons(p["dodi"], "Langkah 3"), "Kirim ke semua unit")
        await idle()
        for i in range(1, 6):
            docs = p[f"unit{i}"].documents()
            assert docs and docs[-1]["document"]["file_id"], i
            assert "Form Pengumpulan Data Kinerja" in docs[-1]["caption"]

        # Steps 4-5: the meeting.
        await p["sekretaris"].press(with_buttons(p["sekretaris"], "Langkah 4"), "Atur rapat")
        await idle()
        # The example is the next working day (Monday's run: Tuesday), so it can be typed.
        prompt = p["sekretaris"].latest("Tulis tanggal")["text"]
        assert "03-11-2026 09:00 Ruang Rapat Badan" in prompt
        await p["sekretaris"].send_text("besok jam sembilan")
        await idle()
        assert "03-11-2026 09:00" in p["sekretaris"].latest("Format belum dikenali")["text"]
        await p["sekretaris"].send_text("03-11-2026 09:00 Ruang Rapat Badan")
        await idle()
        assert p["sekretaris"].latest("Rapat dijadwalkan")
        invitation = with_buttons(p["kepala"], "Undangan rapat")
        assert (
            "Ruang Rapat Badan" in invitation["text"]
            and "3 November 2026 09:00" in invitation["text"]
        )
        await p["kepala"].press(invitation, "Hadir")
        await p["unit3"].press(with_buttons(p["unit3"], "Undangan rapat"), "Tidak hadir")
        await idle()
        task5 = with_buttons(p["sekretaris"], "Langkah 5")
        await p["sekretaris"].send_document(
            b"%PDF-1.4 notulen rapat", "notulen.pdf", PDF, reply_to=task5
        )
        await idle()
        assert p["sekretaris"].latest("notulen.pdf")["text"].startswith("🧾 Tanda terima")
        task5 = with_buttons(p["kepala"], "Langkah 5")
        assert "Batas waktu: Selasa, 3 November 2026 11:00 WIB" in task5["text"]
        early = await p["kepala"].press(task5, "Selesai")  # the day before the meeting
        await idle()
        assert (
            "Rapat baru dimulai Selasa, 3 November 2026 09:00 WIB"
            in (world.server.callback_answers[early]["text"])
        )
        world.clock.advance(days=1, hours=2)  # Tuesday, after the meeting
        await p["kepala"].press(task5, "Selesai")
        await idle()

        # Step 6: each unit delivers from a phone; unit 5 sends photos of pages.
        for i, name in enumerate(UNIT_FILES.values(), start=1):
            if i == 5:
                continue
            unit = p[f"unit{i}"]
            assert with_buttons(unit, "Langkah 6")
            await unit.send_document(DATA / name, name, XLSX)
            await idle()
            receipt = unit.latest("Tanda terima")["text"]
            assert name in receipt
            assert ("Pemeriksaan otomatis" in receipt) == (i == 3)
        pages = [b"\xff\xd8\xff\xe0 halaman satu " * 50, b"\xff\xd8\xff\xe0 halaman dua " * 60]
        await p["unit5"].send_album(pages)
        await idle()
        # One receipt for the album, edited as its pages came.
        receipts = p["unit5"].find("Tanda terima")
        assert len(receipts) == 1, "\n---\n".join(p["unit5"].texts()[-4:])
        assert "Halaman diterima: 2" in receipts[0]["text"]
        assert "langkah ini selesai" not in receipts[0]["text"]
        # The album is complete a quiet moment after its last page.
        world.clock.advance(seconds=6)
        await world.services.deadlines.sweep()
        await idle()
        assert "langkah ini selesai" in p["unit5"].latest("Album lengkap")["text"]
        # Photos are named after the unit and page, not Telegram's message number.
        slug = "bidang-kewaspadaan-nasional-dan-penanganan-konflik"
        async with world.services.db.session() as s:
            photos = (await s.exec(select(StoredFile).where(StoredFile.kind == "photo"))).all()
        assert sorted(f.original_name for f in photos) == [
            f"foto-{slug}-{page}.jpg" for page in (1, 2)
        ]
        task7 = with_buttons(p["rina"], "Langkah 7")

        # Step 7: validation. Unit 3's workbook has mistakes: returned with a note.
        # The planners share the units out: each delivery reaches one of them.
        reviews = [
            (planner, m)
            for planner in (p["rina"], p["dodi"])
            for m in planner.find("Berkas masuk")
            if m.get("reply_markup")
        ]
        assert len(reviews) == 5  # one per unit; the album is one delivery
        assert {planner.first_name for planner, _ in reviews} == {"Rina", "Dodi"}
        [(returner, salah)] = [
            (who, r) for who, r in reviews if "Politik Dalam Negeri" in (r.get("caption") or "")
        ]
        assert "Nama unit kerja (C2) belum diisi" in salah["caption"]
        assert 'berisi "belum ada data", seharusnya angka' in salah["caption"]
        assert "Baris 7: Realisasi TW I, Realisasi TW II kosong" in salah["caption"]
        assert len([r for _, r in reviews if "album 2 halaman" in (r.get("text") or "")]) == 1
        await p["rina"].press(task7, "Lihat berkas unit")
        await idle()
        overview = p["rina"].latest("Berkas unit:")
        assert overview["text"].count("menunggu pemeriksaan") == 5
        for planner, review in reviews:
            if review is salah:
                await planner.press(review, "Kembalikan")
                await idle()
                await planner.send_text("Nama unit kosong; realisasi TW I-II belum diisi.")
            else:
                await planner.press(review, "Terima")
            await idle()
        returned = p["unit3"].latest("Berkas dikembalikan")
        assert "Nama unit kosong" in returned["caption"]
        await p["unit3"].press(returned, "Unggah berkas")
        await idle()
        await p["unit3"].send_document(PERBAIKAN, PERBAIKAN.name, XLSX)
        await idle()
        receipt = p["unit3"].latest("Tanda terima")["text"]
        assert "Versi: 2" in receipt and "Pemeriksaan otomatis" not in receipt
        # The corrected copy goes to the planner who returned the first.
        await returner.press(returner.documents()[-1], "Terima")
        await idle()

        # Steps 8-11: to the head through the secretary; the correction loop once.
        task8 = with_buttons(p["rina"], "Langkah 8")
        await p["rina"].send_document(
            b"PK compiled v1", "dokumen-kinerja.xlsx", XLSX, reply_to=task8
        )
        await idle()
        await p["rina"].press(task8, "Selesai")
        await idle()
        await p["sekretaris"].press(with_buttons(p["sekretaris"], "Langkah 9"), "Selesai")
        await idle()
        # The document comes as the task itself: one message, the task its caption.
        task10 = with_buttons(p["kepala"], "Langkah 10")
        assert task10 is p["kepala"].documents()[-1]
        assert task10["caption"].startswith("📋 Tugas baru")
        labels = [b["text"] for row in task10["reply_markup"]["inline_keyboard"] for b in row]
        assert labels[:2] == ["✅ Setujui", "↩️ Kembalikan dengan catatan"], labels
        await p["kepala"].press(task10, "Kembalikan dengan catatan")
        await idle()
        # The SOP file says what note to write (note_prompt).
        assert (
            p["kepala"]
            .messages[-1]["text"]
            .startswith("✏️ Tuliskan catatan koreksi untuk Sekretaris dan Perencana lalu kirim.")
        )
        prompt, before = p["kepala"].messages[-1], len(p["kepala"].messages)
        await p["kepala"].send_text("Capaian TW III perlu dicek <ulang> & dirapikan.")
        await idle()
        # The typed answer is acknowledged in the prompt that asked for it
        # (an edit just above it), not in a new message.
        assert len(p["kepala"].messages) == before
        assert prompt["text"].startswith("✅ Keputusan pada langkah 10 tercatat: Kembalikan")
        # The planners learn the correction when it reaches them (step 8,
        # through the secretary, as the SOP says), not as a message of its own.
        assert p["rina"].find("Keputusan Kepala Badan") == []
        task11 = with_buttons(p["sekretaris"], "Langkah 11")
        body11 = task11.get("text") or task11["caption"]
        assert "&lt;ulang&gt;" not in body11 and "<ulang>" in body11
        # The decision reaches the secretary in the task it leads to, not twice.
        assert p["sekretaris"].find("Keputusan Kepala Badan: Kembalikan") == []
        # A reply to the task message keeps a note; the button then finishes the step.
        await p["sekretaris"].send_text("Mohon diperbaiki hari ini.", reply_to=task11)
        await idle()
        saved = with_buttons(p["sekretaris"], "Catatan untuk langkah 11 disimpan")
        assert p["rina"].find("putaran ke-2") == []  # not finished by the reply alone
        await p["sekretaris"].press(saved, "Selesai")
        await idle()
        task8b = with_buttons(p["rina"], "Langkah 8")
        # The task is the caption of the bot's compiled draft, attached again.
        body8b = task8b["caption"]
        assert task8b["document"]["file_name"].startswith("rekap-data-kinerja-")
        assert "putaran ke-2" in body8b and "dicek <ulang>" in body8b
        assert "Mohon diperbaiki hari ini." in body8b
        await p["rina"].press(task8b, "Unggah berkas")
        await idle()
        await p["rina"].send_document(b"PK compiled v2", "dokumen-kinerja-v2.xlsx", XLSX)
        await idle()
        await p["rina"].press(task8b, "Selesai")
        await idle()
        await p["sekretaris"].press(with_buttons(p["sekretaris"], "Langkah 9"), "Selesai")
        await idle()
        approved = await p["kepala"].press(with_buttons(p["kepala"], "Langkah 10"), "Setujui")
        await idle()
        # A press is answered on the press (no new message); the task says it.
        answer = p["kepala"].answer(approved)
        assert answer is not None
        assert answer["text"] == "✅ Keputusan pada langkah 10 tercatat: Setujui."
        returned = p["kepala"].latest("Keputusan pada langkah 10 tercatat: Kembalikan")["text"]
        assert "(koreksi)" not in returned and "Capaian TW III" in returned
        # Steps 12-15; the next task names the decision.
        task12 = with_buttons(p["kepala"], "Langkah 12")
        assert "Keputusan Kepala Badan (langkah 10): Setujui" in task12["text"]
        await p["kepala"].send_document(b"%PDF-1.4 signed", "ttd.pdf", PDF, reply_to=task12)
        await idle()
        await p["kepala"].press(task12, "Selesai")
        await idle()
        # Not only the head knows: the secretary's and the planners' next
        # tasks name the approval (no message of its own).
        task13 = with_buttons(p["sekretaris"], "Langkah 13")
        assert "Keputusan Kepala Badan (langkah 10): Setujui" in (
            task13.get("text") or task13["caption"]
        )
        await p["sekretaris"].press(task13, "Selesai")
        await idle()
        assert (
            p["sekretaris"]
            .messages[-1]["text"]
            .startswith("✏️ Tuliskan nomor surat pengantar lalu kirim.")
        )
        await p["sekretaris"].send_text("050/123/Bakesbangpol/2026")
        await idle()
        task14 = with_buttons(p["rina"], "Langkah 14")
        assert "Keputusan Kepala Badan (langkah 10): Setujui" in (
            task14.get("text") or task14["caption"]
        )
        await p["rina"].press(task14, "Selesai")
        await idle()
        await p["dodi"].press(with_buttons(p["dodi"], "Langkah 15"), "Selesai")
        await idle()

        # The officials get the closing summary; a unit's members were told
        # when their file was accepted, and are not alerted weeks later.
        for key, person in p.items():
            if key.startswith("unit"):
                assert not person.find("Selesai: Data Kinerja Triwulan III 2026")
                assert person.find("Diterima oleh")
                continue
            summary = person.latest("Selesai: Data Kinerja Triwulan III 2026")
            assert "Berkas tercatat" in summary["text"]
        errs = world.server.errors()
        assert errs == [], sorted({(e.method, e.error) for e in errs})

        async with world.services.db.session() as s:
            run = (await s.exec(select(Run))).one()
            assert run.state == RunState.done
            steps = (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
            assert all(r.done_at and r.state.value in ("done", "returned") for r in steps)
            assert sorted((r.number, r.iteration) for r in steps if r.iteration > 1) == [
                (8, 2),
                (9, 2),
                (10, 2),
            ]
            files = (await s.exec(select(StoredFile).order_by(StoredFile.id))).all()
            by_name = {f.original_name: f for f in files}
            for name in [FORM.name, *list(UNIT_FILES.values())[:4]]:
                f = by_name[name]
                original = (FORM if name == FORM.name else DATA / name).read_bytes()
                stored = world.services.storage.read(f.storage_path)
                assert stored == original and f.sha256 == hashlib.sha256(original).hexdigest()
            photos = [f for f in files if f.kind == "photo"]
            assert [f.original_name for f in photos] == [
                "foto-bidang-kewaspadaan-nasional-dan-penanganan-konflik-1.jpg",
                "foto-bidang-kewaspadaan-nasional-dan-penanganan-konflik-2.jpg",
            ]
            sent_as = [
                e.details["sent_as"]
                for e in (await s.exec(select(Event).where(Event.kind == "file_received"))).all()
                if e.details["name"].startswith("foto-bidang")
            ]
            # What Telegram's message gave is kept as data, beside the new name.
            assert len(sent_as) == 2 and not set(sent_as) & {f.original_name for f in photos}
            assert [world.services.storage.read(f.storage_path) for f in photos] == pages
            assert {f.version for f in photos} == {1}
            assert {f.review_state for f in photos} == {ReviewState.accepted}
            unit3 = sorted(
                (f for f in files if f.unit_id and "politik" in f.original_name.lower()),
                key=lambda f: f.version,
            )
            assert [(f.version, f.review_state) for f in unit3] == [
                (1, ReviewState.returned),
                (2, ReviewState.accepted),
            ]
            assert world.services.storage.read(unit3[1].storage_path) == PERBAIKAN.read_bytes()
            assert len((await s.exec(select(Attendance))).all()) == 2
            kinds = {e.kind for e in (await s.exec(select(Event))).all()}
            assert {
                "run_started",
                "file_received",
                "file_accepted",
                "file_returned",
                "decision",
                "meeting_scheduled",
                "attendance",
                "run_done",
            } <= kinds
            assert (await verify_chain(s)).ok

        # The history is readable in chat, page by page.
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")
        await admin.send_command("/riwayat")
        await idle()
        history = admin.last
        assert "Riwayat: Data Kinerja Triwulan III 2026" in history["text"]
        await admin.press(history, "Berikutnya")
        await idle()
        assert "(11–20 dari" in admin.messages[-1]["text"]
        pages = [history["text"], admin.messages[-1]["text"]]
        while "Berikutnya" in str(admin.messages[-1].get("reply_markup")):
            await admin.press(admin.messages[-1], "Berikutnya")
            await idle()
            pages.append(admin.messages[-1]["text"])
        whole = "\n".join(pages)
        # Outcomes in words: the SOP's labels for decisions, the engine's own in Indonesian.
        for words in (
            "langkah 4 selesai (undangan rapat dikirim)",
            "langkah 6 selesai (semua unit lengkap)",
            "langkah 7 selesai (semua berkas diterima)",
            "langkah 10 selesai (Kembalikan dengan catatan)",
            "langkah 10 selesai (Setujui)",
        ):
            assert words in whole, words
        for code in ("(diundang)", "(lengkap)", "(valid)", "(koreksi)", "(setuju)"):
            assert code not in whole, code

        # The head downloads the monev report; a unit member may not.
        await p["kepala"].send_command("/laporan")
        await p["unit1"].send_command("/laporan")
        await idle()
        # /laporan sends the workbook, the form as DOCX and the chart; the
        # head's other workbooks are the documents of steps 10 and 12.
        [report] = [
            d
            for d in p["kepala"].documents()
            if d.get("document", {}).get("file_name", "").startswith("laporan-monev")
        ]
        assert report["document"]["file_name"] == "laporan-monev-kegiatan-1.xlsx"
        book = openpyxl.load_workbook(
            io.BytesIO(world.server.file_bytes(report["document"]["file_id"]))
        )
        assert book["Ringkasan"]["B5"].value == "Data Kinerja Triwulan III 2026"
        # The closing message and the report reckon time alike: the meeting
        # step from the meeting (Tuesday 09:00, finished about an hour later).
        [used5] = [row[10] for row in book["Langkah"].iter_rows(values_only=True) if row[0] == 5]
        assert 0 < used5 <= 120
        closing = p["kepala"].latest("Selesai: Data Kinerja Triwulan III 2026")["text"]
        assert f"Waktu kerja terpakai: {minutes_text(book['Ringkasan']['B10'].value)}" in closing
        late_cell = book["Ringkasan"]["B11"].value
        if late_cell == "-":
            assert "Semua langkah selesai tepat waktu" in closing
        else:
            listed = closing.split("melewati batas waktu: ")[1].split("\n")[0]
            assert set(listed.split(", ")) == set(late_cell.split(", ")), (listed, late_cell)
        assert "tidak berwenang" in p["unit1"].messages[-1]["text"]
