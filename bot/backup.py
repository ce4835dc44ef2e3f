"""Backups an office can restore, taken while the bot runs.

A backup is a folder: the database (SQLite through its online backup API,
one consistent copy while the bot writes; PostgreSQL through `pg_dump`, one
snapshot as plain SQL), the received files (bot/storage.py's folder), the
audit witness and, when the key is a file, the audit key (bot/seal.py), and
`manifest.json` with every file's SHA-256, written last: a folder without
one is a backup that did not finish.

The order keeps the copy consistent without stopping the bot: the witness
first, so every seal in it names an event the database copy holds; then the
database; then the files, so every file the copy names is already on disk
(a file is stored before the row that names it is committed, and a stored
file is never removed once named).

A restore checks the manifest before it touches anything, refuses a DATA_DIR
(or a database) that is not empty, puts everything in a folder beside
DATA_DIR and moves it into place at the end, so a restore that fails half
way leaves no half a DATA_DIR.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from bot.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_COPY = "sopbot.db"
PG_DUMP = "database.sql"
FILES = "files"
WITNESS = "audit-witness.jsonl"
KEY = "audit.key"
CHUNK = 1024 * 1024
# Left out of the files: downloads in progress and half-written copies.
SKIPPED_DIRS = {".incoming"}
SKIPPED_SUFFIX = ".part"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why (Indonesian)."""


@dataclass(frozen=True)
class Manifest:
    created_at: str
    database: str  # "sqlite" or "postgresql"
    files: dict[str, dict[str, Any]]

    @property
    def total_bytes(self) -> int:
        return sum(int(entry["size"]) for entry in self.files.values())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, target: Path, mode: int | None = None) -> dict[str, Any]:
    """Copy a file, hashing it on the way; its digest and size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(target, flags, mode if mode is not None else 0o644)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


def _entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_of(path), "size": path.stat().st_size}


def _database(settings: Settings) -> tuple[str, URL]:
    url = make_url(settings.db_url)
    kind = url.get_backend_name()
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(f"Database {kind} tidak didukung untuk cadangan.")
    return kind, url


def _pg_command(url: URL, program: str) -> tuple[list[str], dict[str, str]]:
    """The connection as libpq arguments; the password in the environment,
    never on a command line another user can read."""
    if shutil.which(program) is None:
        raise BackupError(
            f"{program} tidak ditemukan: pasang klien PostgreSQL (apt install postgresql-client)."
        )
    args = [program, "--no-password"]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["(tanpa keterangan)"])[-1]
        raise BackupError(f"{what} gagal: {first}")
    return done.stdout


def _files_under(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        found += [Path(folder) / n for n in sorted(names) if not n.endswith(SKIPPED_SUFFIX)]
    return found


def _empty_folder(folder: Path, refusal: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(refusal.format(folder=folder))


def backup(settings: Settings, target: Path) -> Manifest:
    """Write a backup of the running bot into the new or empty `target`."""
    kind, url = _database(settings)
    target = Path(target)
    _empty_folder(target, "Folder cadangan {folder} tidak kosong: pilih folder baru.")
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o700)  # it may hold the audit key
    files: dict[str, dict[str, Any]] = {}
    # 1. The witness first: each of its seals names an event the copy holds.
    if settings.witness_file.is_file():
        files[WITNESS] = _copy(settings.witness_file, target / WITNESS)
    if settings.audit_key is None and settings.audit_key_file.is_file():
        files[KEY] = _copy(settings.audit_key_file, target / KEY, mode=0o600)
    # 2. The database, one consistent snapshot.
    if kind == "sqlite":
        source = Path(url.database or "")
        if not source.is_file():
            raise BackupError(f"Database {source} tidak ada.")
        copy = target / SQLITE_COPY
        src = sqlite3.connect(source, timeout=30)
        dst = sqlite3.connect(copy)
        try:
            with dst:
                src.backup(dst)  # all pages in one step: a single read snapshot
        finally:
            dst.close()
            src.close()
        files[SQLITE_COPY] = _entry(copy)
    else:
        args, env = _pg_command(url, "pg_dump")
        dump = target / PG_DUMP
        _run(
            [*args, "--no-owner", "--no-privileges", "--file", str(dump), url.database or ""],
            env,
            "pg_dump",
        )
        files[PG_DUMP] = _entry(dump)
    # 3. The files, each named by the copy already on disk.
    root = settings.files_dir
    for path in _files_under(root) if root.is_dir() else []:
        relative = f"{FILES}/{path.relative_to(root).as_posix()}"
        try:
            files[relative] = _copy(path, target / relative)
        except FileNotFoundError:
            continue  # an unrecorded duplicate, removed while we walked
    manifest = Manifest(datetime.now(UTC).isoformat(), kind, files)
    tmp = target / f"{MANIFEST}.part"
    tmp.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "created_at": manifest.created_at,
                "database": kind,
                "files": files,
            },
            indent=1,
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    os.replace(tmp, target / MANIFEST)
    return manifest


def read_manifest(source: Path) -> Manifest:
    """The backup's manifest, with every file checked against it."""
    try:
        data = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} bukan cadangan yang lengkap ({MANIFEST} tidak ada).") from None
    except ValueError as exc:
        raise BackupError(f"{source / MANIFEST} rusak: {exc}") from None
    if data.get("format") != FORMAT or data.get("database") not in ("sqlite", "postgresql"):
        raise BackupError(f"{source / MANIFEST}: format cadangan tidak dikenal.")
    manifest = Manifest(data["created_at"], data["database"], data["files"])
    if not all(
        isinstance(e, dict) and {"sha256", "size"} <= e.keys() for e in manifest.files.values()
    ):
        raise BackupError(f"{source / MANIFEST}: daftar berkas tidak sah.")
    for relative, entry in manifest.files.items():
        path = (source / relative).resolve()
        if not path.is_relative_to(source.resolve()):
            raise BackupError(f"{MANIFEST} menyebut berkas di luar cadangan: {relative}")
        if not path.is_file():
            raise BackupError(f"Berkas cadangan hilang: {relative}")
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            raise BackupError(f"Berkas cadangan rusak (SHA-256 tidak cocok): {relative}")
    return manifest


def _pg_is_empty(url: URL) -> bool:
    args, env = _pg_command(url, "psql")
    query = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    out = _run(
        [*args, "--tuples-only", "--no-align", "--command", query, url.database or ""],
        env,
        "psql",
    )
    return out.strip() == "0"


def restore(settings: Settings, source: Path) -> Manifest:
    """Bring the backup in `source` back into an empty DATA_DIR (and an
    empty database, for PostgreSQL)."""
    source = Path(source)
    manifest = read_manifest(source)
    kind, url = _database(settings)
    if kind != manifest.database:
        raise BackupError(
            f"Cadangan ini berisi database {manifest.database}, "
            f"sedangkan DATABASE_URL menunjuk {kind}."
        )
    data_dir = settings.data_dir
    _empty_folder(
        data_dir,
        "DATA_DIR {folder} tidak kosong: cadangan dipulihkan hanya ke DATA_DIR yang kosong "
        "(bot yang berjalan tidak ditimpa).",
    )
    db_file = Path(url.database or "") if kind == "sqlite" else None
    if db_file is not None and db_file.exists():
        raise BackupError(f"Database {db_file} sudah ada: pulihkan hanya ke tempat yang kosong.")
    if kind == "postgresql" and not _pg_is_empty(url):
        raise BackupError(
            f"Database {url.database} tidak kosong: pulihkan ke database baru yang kosong."
        )
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.parent / f".{data_dir.name}.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    outside: Path | None = None
    try:
        staging.mkdir()
        places = {
            WITNESS: settings.witness_file,
            KEY: settings.audit_key_file,
        }
        for relative, entry in manifest.files.items():
            if relative in (SQLITE_COPY, PG_DUMP):
                continue
            if relative.startswith(f"{FILES}/"):
                place = settings.files_dir / relative.removeprefix(f"{FILES}/")
            elif relative in places:
                place = places[relative]
            else:
                continue
            copied = _copy(
                source / relative,
                staging / place.relative_to(data_dir),
                mode=0o600 if relative == KEY else None,
            )
            if copied != entry:
                raise BackupError(f"Salinan {relative} tidak sama dengan cadangan.")
        if db_file is not None:
            if db_file.resolve().is_relative_to(data_dir.resolve()):
                staged_db = staging / db_file.resolve().relative_to(data_dir.resolve())
            else:
                # A SQLite file DATABASE_URL puts elsewhere: moved in last.
                staged_db = outside = staging.with_name(staging.name + ".db")
            if _copy(source / SQLITE_COPY, staged_db) != manifest.files[SQLITE_COPY]:
                raise BackupError("Salinan database tidak sama dengan cadangan.")
        else:
            args, env = _pg_command(url, "psql")
            _run(
                [
                    *args,
                    "--quiet",
                    "--single-transaction",
                    "--set",
                    "ON_ERROR_STOP=1",
                    "--file",
                    str(source / PG_DUMP),
                    url.database or "",
                ],
                env,
                "psql",
            )
        if data_dir.exists():
            for child in staging.iterdir():
                os.replace(child, data_dir / child.name)
            staging.rmdir()
        else:
            os.replace(staging, data_dir)
        if outside is not None and db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            os.replace(outside, db_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if outside is not None:
            outside.unlink(missing_ok=True)
    return manifest
