"""The archive of a run (step 15): one ZIP of what the run produced, with a
manifest whose hashes anyone can check (`sopbot archive verify FILE`).

Inside: the final document (the latest of the step's `attach_from`, e.g. the
signed scan, else the last compiled one) under dokumen-akhir/, every
document of the run's steps under langkah-NN-<key>/ (the form, the minutes,
each version of the compiled document, the cover letter), every accepted
unit file under unit/<unit>/, the monev workbook, the event log as CSV, and
manifest.csv (file, unit, uploader, time received, size, SHA-256).

The ZIP is written to disk member by member from file handles in chunks,
hashing on the way: a run's files are never whole in memory. Kept under
DATA_DIR by the drafts part of the engine, like any file of the run.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Event, Member, ReviewState, Run, RunStep, StoredFile, Unit
from bot.run.drafts import DRAFT, MadeDraft
from bot.sop import Sop, Step
from bot.storage import CHUNK, FileStorage

ZIP_MIME = "application/zip"
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("berkas", "unit", "pengunggah", "diterima", "ukuran", "sha256")
EVENT_FIELDS = ("seq", "waktu", "peristiwa", "pelaku", "rincian", "hash")
# Already compressed: stored as they are, so the archive costs no CPU on them.
_STORED = {"zip", "xlsx", "xlsm", "docx", "pptx", "jpg", "jpeg", "png", "pdf", "ods", "odt"}
_UNSAFE = re.compile(r"[^\w.\- ()]+")


def _safe(name: str) -> str:
    """A member name from a file name people gave: no folders, no oddities."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip(" .") or "berkas"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "tanpa-nama"


@dataclass(frozen=True)
class Entry:
    """One file to put in the archive: from storage (`path`) or made now
    (`data`), with what the manifest says about it."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    unit: str = ""
    uploader: str = ""
    received: str = ""


@dataclass
class Contents:
    members: list[Entry] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)

    def add(
        self,
        folder: str,
        name: str,
        *,
        path: Path | None = None,
        data: bytes | None = None,
        unit: str = "",
        uploader: str = "",
        received: str = "",
    ) -> None:
        """Add under a unique member name (a second 'form.xlsx' in one folder
        becomes 'form (2).xlsx')."""
        stem, dot, ext = _safe(name).rpartition(".")
        stem, ext = (stem, f".{ext}") if dot and stem else (_safe(name), "")
        candidate, n = f"{folder}{stem}{ext}", 2
        while candidate.casefold() in self.taken:
            candidate, n = f"{folder}{stem} ({n}){ext}", n + 1
        self.taken.add(candidate.casefold())
        self.members.append(Entry(candidate, path, data, unit, uploader, received))


def _copy(source: IO[bytes], target: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        target.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def write_archive(out: Path, members: list[Entry]) -> int:
    """Write the ZIP (run in a thread), then its manifest; returns how many
    files the manifest lists."""
    stamp = datetime.now().timetuple()[:6]
    rows = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for m in members:
            info = zipfile.ZipInfo(m.name, date_time=stamp)
            ext = m.name.rsplit(".", 1)[-1].lower() if "." in m.name else ""
            info.compress_type = zipfile.ZIP_STORED if ext in _STORED else zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as target:
                if m.path is not None:
                    with open(m.path, "rb") as source:
                        size, sha = _copy(source, target)
                else:
                    size, sha = _copy(io.BytesIO(m.data or b""), target)
            rows.append([m.name, m.unit, m.uploader, m.received, size, sha])
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(rows)
        archive.writestr(MANIFEST, text.getvalue().encode("utf-8"))
    return len(rows)


def events_csv(events: list[Event], names: dict[int | None, str], tz: tzinfo) -> bytes:
    """The run's event log, one row per event with its hash."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(EVENT_FIELDS)
    for e in events:
        writer.writerow(
            [
                e.seq,
                e.at.astimezone(tz).isoformat(),
                e.kind,
                names.get(e.actor_id, ""),
                json.dumps(e.details, ensure_ascii=False, sort_keys=True),
                e.hash,
            ]
        )
    return text.getvalue().encode("utf-8")


class RunArchive:
    """The draft maker for `draft: archive` (bot/run/drafts.py). `monev`
    makes the run's monev workbook (bot/report.py, given by the wiring)
    from the open session, so it includes the step that just finished."""

    def __init__(
        self,
        storage: FileStorage,
        tz: tzinfo,
        monev: Callable[[AsyncSession, int], Awaitable[bytes]] | None = None,
    ) -> None:
        self.storage = storage
        self.tz = tz
        self.monev = monev

    def _local(self, moment: datetime | None) -> str:
        return moment.astimezone(self.tz).isoformat(timespec="seconds") if moment else ""

    async def __call__(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> MadeDraft:
        contents = await self.contents(s, run, sop, step)
        if self.monev is not None:
            contents.add(
                "", f"laporan-monev-{_slug(run.title)}.xlsx", data=await self.monev(s, run.id or 0)
            )
        out = self.storage.temporary().with_suffix(".zip")
        try:
            listed = await asyncio.to_thread(write_archive, out, contents.members)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return MadeDraft(
            path=out,
            name=f"arsip-{_slug(run.title)}.zip",
            mime=ZIP_MIME,
            details={"files": listed},
        )

    async def contents(self, s: AsyncSession, run: Run, sop: Sop, step: Step) -> Contents:
        """Every file the archive holds, in order, from the run's records."""
        names: dict[int | None, str] = {m.id: m.name for m in (await s.exec(select(Member))).all()}
        units = {u.id: u.name for u in (await s.exec(select(Unit))).all()}
        steps = {
            rs.id: rs
            for rs in (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
        }
        files = list(
            (
                await s.exec(
                    select(StoredFile)
                    .where(StoredFile.run_id == run.id)
                    .order_by(col(StoredFile.id))
                )
            ).all()
        )
        contents = Contents()

        def add(folder: str, f: StoredFile) -> None:
            name = f.original_name if f.version <= 1 else f"v{f.version}-{f.original_name}"
            contents.add(
                folder,
                name,
                path=self.storage.path(f.storage_path),
                unit=units.get(f.unit_id or 0, ""),
                uploader=names.get(f.uploader_id, "") if f.uploader_id else "bot",
                received=self._local(f.received_at),
            )

        documents = [f for f in files if f.unit_id is None and f.kind != DRAFT]
        for f in _final(documents, steps, step.attach_from) or _last_compiled(files, steps, sop):
            add("dokumen-akhir/", f)
        for f in documents:
            rs = steps[f.run_step_id]
            add(f"langkah-{rs.number:02d}-{rs.step_key}/", f)
        for f in files:
            if f.unit_id is not None and f.review_state == ReviewState.accepted:
                add(f"unit/{_slug(units.get(f.unit_id, 'unit'))}/", f)
        events = list(
            (
                await s.exec(select(Event).where(Event.run_id == run.id).order_by(col(Event.seq)))
            ).all()
        )
        contents.add("", "peristiwa.csv", data=events_csv(events, names, self.tz))
        return contents


def _final(
    documents: list[StoredFile], steps: dict[int | None, RunStep], keys: list[str]
) -> list[StoredFile]:
    """The latest version of the first step in `keys` that has documents."""
    for key in keys:
        of_key = [f for f in documents if steps[f.run_step_id].step_key == key]
        if of_key:
            newest = max(
                of_key, key=lambda f: (steps[f.run_step_id].iteration, f.version, f.id or 0)
            )
            rs_id, version = newest.run_step_id, newest.version
            return [f for f in of_key if f.run_step_id == rs_id and f.version == version]
    return []


def _last_compiled(
    files: list[StoredFile], steps: dict[int | None, RunStep], sop: Sop
) -> list[StoredFile]:
    """Without a final document, the bot's last compiled workbook."""
    compiled = [
        f
        for f in files
        if f.kind == DRAFT and sop.step(steps[f.run_step_id].step_key).draft == "compiled"
    ]
    return compiled[-1:]


async def latest_archive(s: AsyncSession, run_id: int) -> StoredFile | None:
    """The newest archive the bot made for a run (for `sopbot archive export`)."""
    return (
        await s.exec(
            select(StoredFile)
            .where(
                StoredFile.run_id == run_id,
                StoredFile.kind == DRAFT,
                StoredFile.mime_type == ZIP_MIME,
            )
            .order_by(col(StoredFile.id).desc())
        )
    ).first()


# --------------------------------------------------------------------- verify


@dataclass
class Verification:
    """What `sopbot archive verify` found: each file named once."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    problem: str | None = None  # the file is no archive, or has no manifest

    @property
    def ok(self) -> bool:
        return self.problem is None and not (self.missing or self.extra or self.changed)


def _members(archive: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    return (i for i in archive.infolist() if not i.is_dir())


def verify_archive(path: Path) -> Verification:
    """Check every file against the manifest's size and SHA-256, reading
    each member in chunks; name each missing, extra or changed file."""
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.problem = f"bukan arsip ZIP yang dapat dibaca ({exc})"
        return result
    with archive:
        try:
            text = archive.read(MANIFEST).decode("utf-8")
        except KeyError:
            result.problem = f"{MANIFEST} tidak ada di dalam arsip"
            return result
        listed = {row["berkas"]: row for row in csv.DictReader(io.StringIO(text))}
        present = {i.filename: i for i in _members(archive) if i.filename != MANIFEST}
        for name, row in listed.items():
            info = present.get(name)
            if info is None:
                result.missing.append(name)
                continue
            digest = hashlib.sha256()
            try:
                with archive.open(info) as member:
                    while chunk := member.read(CHUNK):
                        digest.update(chunk)
            except zipfile.BadZipFile:  # a damaged member fails its CRC
                result.changed.append(name)
                continue
            result.checked += 1
            if digest.hexdigest() != row["sha256"] or str(info.file_size) != row["ukuran"]:
                result.changed.append(name)
        result.extra = sorted(set(present) - set(listed))
    return result
