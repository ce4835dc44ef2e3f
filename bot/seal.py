"""Seals: the event chain's head, signed with a key the database does not
hold and kept where the database cannot reach it.

The hash chain (bot/audit.py) finds an edited, reordered or deleted event,
but whoever can write the database can also delete the last events and set
the chain head back, or delete every event and the head: what is left is a
chain that holds. A seal anchors the chain outside the database: the head's
sequence number and hash, signed with HMAC-SHA256 under a key that is not in
the database (AUDIT_KEY, or DATA_DIR/audit.key, owner-only, made on first
use), appended as one line to a witness file (DATA_DIR/audit-witness.jsonl)
and sent to the admins as a quiet chat line. Events may come after a seal,
but every sealed event must still be there with the sealed hash: `check`
names a cut ("catatan setelah #N hilang") or a rewrite (the hash at a sealed
number differs), and a seal whose HMAC does not match (a forged witness line,
or another key).

The bot seals when a working day has opened since the last seal and when a
run has ended since it (jobs/seal.py asks `seal_if_owed` every minute); an
unchanged head is not sealed again, since its seal already says all. The
domain here knows nothing of Telegram: the chat line is an outbox row.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Verification, verify_chain
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.models import ChainHead, Event, Member, MemberRole, Run
from bot.outbox import queue
from bot.settings import Settings
from bot.views import ADMIN

# A key shorter than this is too easy to guess (the file holds 64 hex digits).
MIN_KEY_CHARS = 32
# How much of the hash the admins' chat line shows: enough to compare (64
# bits), short enough to ignore.
CHAT_HASH_CHARS = 16
# A seal as the admins' chat shows it, pasted into a file of their own.
CHAT_LINE = re.compile(r"Segel catatan #(\d+):\s*([0-9a-f]{8,64})")

Status = Literal[
    "intact", "unsealed", "chain_broken", "cut", "rewritten", "bad_seal", "bad_line", "no_key"
]


class SealError(Exception):
    """The key or the witness cannot be used; the message says why (Indonesian)."""


class SealConflict(SealError):
    """The chain no longer holds what the newest seal says: the bot does not
    seal over it (that would bless the cut), it tells the admins."""

    def __init__(self, finding: SealCheck) -> None:
        super().__init__(f"rantai tidak cocok dengan segel #{finding.seal_seq}: {finding.status}")
        self.finding = finding


def sign(key: bytes, seq: int, head_hash: str) -> str:
    """HMAC-SHA256 over the sequence number and the hash of the head."""
    return hmac.new(key, f"{seq}:{head_hash}".encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short name of a key, so a seal made with another key says so."""
    return hashlib.sha256(key).hexdigest()[:8]


class SealKey:
    """The signing key: AUDIT_KEY from the environment, else a file under
    DATA_DIR readable by its owner only, made on first use."""

    def __init__(self, path: Path, secret: str | None = None) -> None:
        self.path = Path(path)
        self.secret = secret

    def load(self, *, create: bool) -> bytes | None:
        """The key; None when there is none yet and `create` is False."""
        if self.secret is not None:
            text = self.secret.strip()
            if len(text) < MIN_KEY_CHARS:
                raise SealError(f"AUDIT_KEY terlalu pendek: minimal {MIN_KEY_CHARS} karakter.")
            return text.encode()
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return self._create() if create else None
        if mode & 0o077:
            raise SealError(
                f"Kunci segel {self.path} dapat dibaca pengguna lain: "
                f"jalankan chmod 600 {self.path}."
            )
        text = self.path.read_text(encoding="ascii").strip()
        if len(text) < MIN_KEY_CHARS:
            raise SealError(f"Kunci segel {self.path} rusak (terlalu pendek).")
        return text.encode()

    def _create(self) -> bytes:
        """Write a fresh key whole, then link it into place: a second process
        racing to make one finds the first one's, never half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(32)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(text + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                key = self.load(create=False)
                assert key is not None
                return key
        finally:
            tmp.unlink(missing_ok=True)
        return text.encode()


@dataclass(frozen=True)
class Seal:
    """One witnessed head. A line copied from the admins' chat has a hash
    prefix and no signature (the chat is its own witness)."""

    seq: int
    hash: str
    at: datetime | None = None
    mac: str | None = None
    key: str | None = None
    line: int = 0

    def to_line(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "hash": self.hash,
                "at": self.at.isoformat() if self.at else None,
                "key": self.key,
                "mac": self.mac,
            },
            sort_keys=True,
        )

    def matches(self, head_hash: str) -> bool:
        return head_hash.startswith(self.hash)


class WitnessError(SealError):
    def __init__(self, path: Path, line: int, why: str) -> None:
        super().__init__(f"{path} baris {line}: {why}")
        self.line = line


def parse_witness(path: Path, text: str) -> list[Seal]:
    """The seals of a witness file, oldest first: the bot's JSON lines, or
    lines copied from the admins' chat ("Segel catatan #1234: 9f2c…");
    other lines of a pasted chat (names, dates) are passed over, but a
    line that should be a seal and is not refuses the whole file."""
    seals: list[Seal] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                data = json.loads(line)
                seal = Seal(
                    seq=int(data["seq"]),
                    hash=str(data["hash"]),
                    at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
                    mac=str(data["mac"]),
                    key=data.get("key"),
                    line=number,
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise WitnessError(path, number, f"bukan segel yang sah ({exc})") from None
            if not re.fullmatch(r"[0-9a-f]{64}", seal.hash) or seal.seq < 1:
                raise WitnessError(path, number, "nomor atau hash segel tidak sah")
            seals.append(seal)
            continue
        found = CHAT_LINE.search(line)
        if found:
            seals.append(Seal(seq=int(found[1]), hash=found[2], line=number))
        elif "Segel catatan" in line:
            raise WitnessError(path, number, "baris segel tidak terbaca")
    return seals


class Witness:
    """The witness file: one seal a line, appended, never rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def seals(self) -> list[Seal]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return parse_witness(self.path, text)

    @contextmanager
    def locked(self) -> Iterator[IO[str]]:
        """The file opened for appending under an exclusive lock, so the bot
        and `sopbot audit seal` never interleave (nor seal out of order)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX)
            try:
                yield out
            finally:
                fcntl.flock(out.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def append(out: IO[str], seal: Seal) -> None:
        out.write(seal.to_line() + "\n")
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class SealCheck:
    """What `check` found. `seal_seq`/`seal_hash`/`seal_line` name the seal
    the chain was held against (or the one that failed); `last_seq` is the
    chain's last number; for a broken chain, `chain` says where."""

    status: Status
    checked: int = 0
    last_seq: int = 0
    seal_seq: int | None = None
    seal_hash: str | None = None
    seal_at: datetime | None = None
    seal_line: int | None = None
    seals: int = 0
    other_key: bool = False
    detail: str = ""
    chain: Verification | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("intact", "unsealed")


@dataclass(frozen=True)
class Sealed:
    seal: Seal
    new: bool
    admins: int = 0


class Sealer:
    """Seals the chain head and checks the chain against the seals."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        calendar: WorkCalendar,
        key: SealKey,
        witness: Witness,
    ) -> None:
        self.db = db
        self.clock = clock
        self.calendar = calendar
        self.key = key
        self.witness = witness

    @classmethod
    def build(
        cls, settings: Settings, db: Database, clock: Clock, calendar: WorkCalendar
    ) -> Sealer:
        """The key and the witness where the settings put them."""
        secret = settings.audit_key.get_secret_value() if settings.audit_key else None
        return cls(
            db,
            clock,
            calendar,
            SealKey(settings.audit_key_file, secret),
            Witness(settings.witness_file),
        )

    async def head(self, s: AsyncSession) -> tuple[int, str]:
        head = (await s.exec(select(ChainHead).where(ChainHead.id == 1))).first()
        return (head.seq, head.hash) if head is not None else (0, "")

    async def compare(self, s: AsyncSession, seal: Seal) -> SealCheck | None:
        """Does the chain still hold what `seal` says? None when it does,
        else the cut or the rewrite."""
        found = (await s.exec(select(Event.hash).where(Event.seq == seal.seq))).first()
        if found is not None and seal.matches(found):
            return None
        last = (await s.exec(select(func.max(Event.seq)))).first() or 0
        return SealCheck(
            "cut" if found is None else "rewritten",
            last_seq=last,
            seal_seq=seal.seq,
            seal_hash=seal.hash,
            seal_at=seal.at,
            seal_line=seal.line,
            detail=found or "",
        )

    async def seal(self) -> Sealed | None:
        """Sign the head, append it to the witness and queue its quiet chat
        line to the admins; None when the chain is still empty. A head
        already sealed is not sealed twice; a chain that contradicts the
        newest seal is not sealed at all (SealConflict)."""
        key = self.key.load(create=True)
        assert key is not None
        with self.witness.locked() as out:
            seals = self.witness.seals()
            newest = seals[-1] if seals else None
            now = self.clock.now()
            async with self.db.session() as s:
                seq, head_hash = await self.head(s)
                if seq == 0:
                    return None
                if newest is not None:
                    if newest.seq == seq and newest.matches(head_hash):
                        return Sealed(newest, new=False)
                    finding = await self.compare(s, newest)
                    if finding is not None:
                        raise SealConflict(finding)
            seal = Seal(seq, head_hash, now, sign(key, seq, head_hash), key_id(key))
            Witness.append(out, seal)
        return Sealed(seal, new=True, admins=await self._tell_admins(seal))

    async def _tell_admins(self, seal: Seal) -> int:
        async with self.db.transaction() as s:
            admins = await self._admins(s)
            for admin_id in admins:
                await queue(
                    s,
                    key=f"audit_seal:{seal.seq}:{seal.hash[:12]}:{admin_id}",
                    member_id=admin_id,
                    template="audit_seal",
                    context={"seq": seal.seq, "hash": seal.hash[:CHAT_HASH_CHARS]},
                    now=self.clock.now(),
                    silent=True,
                )
        return len(admins)

    async def _admins(self, s: AsyncSession) -> list[int]:
        rows = await s.exec(
            select(MemberRole.member_id)
            .join(Member, col(Member.id) == col(MemberRole.member_id))
            .where(MemberRole.role == ADMIN, col(Member.active).is_(True))
        )
        return sorted(set(rows.all()))

    async def alert(self, conflict: SealConflict) -> None:
        """Tell the admins (aloud, once per seal) that the chain no longer
        holds what a seal says."""
        finding = conflict.finding
        async with self.db.transaction() as s:
            for admin_id in await self._admins(s):
                await queue(
                    s,
                    key=f"audit_conflict:{finding.seal_seq}:{finding.last_seq}:{admin_id}",
                    member_id=admin_id,
                    template="audit_conflict",
                    context={
                        "status": finding.status,
                        "seq": finding.seal_seq,
                        "last_seq": finding.last_seq,
                    },
                    now=self.clock.now(),
                )

    async def owed(self) -> bool:
        """Is a seal owed now: none yet, or the head moved since the newest
        and either a run ended or a working day opened since it was made."""
        seals = self.witness.seals()
        newest = seals[-1] if seals else None
        now = self.clock.now()
        async with self.db.session() as s:
            seq, head_hash = await self.head(s)
            if seq == 0:
                return False
            if newest is None or newest.at is None:
                return True
            if newest.seq == seq and newest.matches(head_hash):
                return False
            ended = (
                await s.exec(select(Run.id).where(col(Run.ended_at) > newest.at).limit(1))
            ).first()
        if ended is not None:
            return True
        opening = self.calendar.opening_of_day(now.astimezone(self.calendar.tz).date())
        return opening is not None and newest.at < opening <= now

    async def seal_if_owed(self) -> Sealed | None:
        """The job's call: seal when `owed` says so."""
        if not await self.owed():
            return None
        return await self.seal()

    async def check(self, witness: Witness | None = None) -> SealCheck:
        """The chain against the seals of `witness` (the bot's own by
        default): every signature, then the chain itself, then each seal,
        the newest first."""
        witness = witness or self.witness
        try:
            seals = witness.seals()
        except WitnessError as exc:
            return SealCheck("bad_line", seal_line=exc.line, detail=str(exc))
        signed = [x for x in seals if x.mac is not None]
        key = self.key.load(create=False) if signed else None
        if signed and key is None:
            return SealCheck("no_key", seals=len(seals), detail=str(self.key.path))
        for x in signed:
            assert key is not None and x.mac is not None
            if not hmac.compare_digest(sign(key, x.seq, x.hash), x.mac):
                return SealCheck(
                    "bad_seal",
                    seals=len(seals),
                    seal_seq=x.seq,
                    seal_hash=x.hash,
                    seal_at=x.at,
                    seal_line=x.line,
                    other_key=x.key is not None and x.key != key_id(key),
                )
        async with self.db.session() as s:
            chain = await verify_chain(s)
            if not chain.ok:
                return SealCheck(
                    "chain_broken", checked=chain.checked, seals=len(seals), chain=chain
                )
            for x in [*seals[-1:], *reversed(seals[:-1])]:
                finding = await self.compare(s, x)
                if finding is not None:
                    return replace(finding, checked=chain.checked, seals=len(seals))
        if not seals:
            return SealCheck("unsealed", checked=chain.checked, last_seq=chain.checked)
        newest = seals[-1]
        return SealCheck(
            "intact",
            checked=chain.checked,
            last_seq=chain.checked,
            seal_seq=newest.seq,
            seal_hash=newest.hash,
            seal_at=newest.at,
            seal_line=newest.line,
            seals=len(seals),
        )
