"""Where received files are kept.

Names are made by the bot (run, a random id, a safe extension); the sender's
file name is data in the database and never part of a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024  # bytes read at a time when copying a file into storage
_SAFE_EXT = re.compile(r"^[a-z0-9]{1,8}$")


def extension_of(name: str) -> str:
    """The lower-case extension of a file name, or '' when it has none."""
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if "." not in base:
        return ""
    ext = base.rsplit(".", 1)[1].lower()
    return ext if _SAFE_EXT.match(ext) else ""


def photo_name(owner: str, version: int, page: int) -> str:
    """A photo's name people can place: the unit (or step) and the page,
    e.g. 'foto-bidang-politik-dalam-negeri-1.jpg' ('-v2-1' for a second
    version); Telegram gives photos no name of their own."""
    slug = re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")[:80] or "berkas"
    return f"foto-{slug}-{f'v{version}-' if version > 1 else ''}{page}.jpg"


@dataclass(frozen=True)
class SavedFile:
    relative_path: str
    size: int
    sha256: str


class FileStorage:
    """Received files under names the bot makes (never the sender's name as a
    path), written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, data: bytes | Path, *, run_id: int, original_name: str) -> SavedFile:
        """Write atomically (temp file, fsync, rename) and return its digest.
        A file on disk is copied in chunks and hashed on the way, so a large
        file is never whole in memory."""
        ext = extension_of(original_name)
        name = secrets.token_hex(12) + (f".{ext}" if ext else "")
        relative = f"run-{run_id}/{name}"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                    digest.update(data)
                    size = len(data)
                else:
                    with open(data, "rb") as src:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return SavedFile(relative, size, digest.hexdigest())

    def keep(self, made: Path, *, run_id: int, original_name: str) -> SavedFile:
        """Take a file the bot made under `temporary()` into storage: hashed
        in chunks, then renamed (same disk), so a large archive is neither
        read whole nor copied."""
        ext = extension_of(original_name)
        relative = f"run-{run_id}/{secrets.token_hex(12)}" + (f".{ext}" if ext else "")
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(made, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
            os.fsync(src.fileno())
        os.replace(made, target)
        return SavedFile(relative, size, digest.hexdigest())

    def temporary(self) -> Path:
        """A fresh path for a download in progress, under DATA_DIR (on the
        same disk as the files, never in memory); the caller removes it."""
        folder = self.root / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{secrets.token_hex(12)}.part"

    def path(self, relative: str) -> Path:
        resolved = (self.root / relative).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError("path outside storage")
        return resolved

    def read(self, relative: str) -> bytes:
        return self.path(relative).read_bytes()
