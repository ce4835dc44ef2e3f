"""The append-only, hash-chained event log.

Each event's hash covers its content and the previous hash, so an edited,
deleted or reordered row breaks the chain at a place `verify` can name.
Appends lock the single ChainHead row, which serialises writers on
PostgreSQL; SQLite is already serialised by BEGIN IMMEDIATE.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import ChainHead, Event

GENESIS = "0" * 64


def event_hash(
    *,
    seq: int,
    run_id: int | None,
    at: datetime,
    actor_id: int | None,
    kind: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "run_id": run_id,
        "at": at.astimezone(UTC).isoformat(),
        "actor_id": actor_id,
        "kind": kind,
        "details": details,
        "prev": prev_hash,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


async def append_event(
    session: AsyncSession,
    kind: str,
    *,
    at: datetime,
    run_id: int | None = None,
    actor_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """Add one event at the end of the chain, inside the caller's transaction."""
    details = json.loads(json.dumps(details or {}, default=str))
    head = (
        await session.exec(select(ChainHead).where(ChainHead.id == 1).with_for_update())
    ).first()
    if head is None:
        head = ChainHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    seq = head.seq + 1
    digest = event_hash(
        seq=seq,
        run_id=run_id,
        at=at,
        actor_id=actor_id,
        kind=kind,
        details=details,
        prev_hash=head.hash,
    )
    event = Event(
        seq=seq,
        run_id=run_id,
        at=at,
        actor_id=actor_id,
        kind=kind,
        details=details,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.seq, head.hash = seq, digest
    session.add(head)
    await session.flush()
    return event


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""


async def verify_chain(session: AsyncSession) -> Verification:
    """Walk the chain in order; name the first link that does not hold."""
    events = (await session.exec(select(Event).order_by(col(Event.seq)))).all()
    prev = GENESIS
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return Verification(
                False,
                expected_seq - 1,
                expected_seq,
                f"peristiwa nomor {expected_seq} hilang (berikutnya nomor {event.seq})",
            )
        if event.prev_hash != prev:
            return Verification(
                False,
                expected_seq - 1,
                event.seq,
                f"peristiwa nomor {event.seq} tidak menyambung ke peristiwa sebelumnya",
            )
        digest = event_hash(
            seq=event.seq,
            run_id=event.run_id,
            at=event.at,
            actor_id=event.actor_id,
            kind=event.kind,
            details=event.details,
            prev_hash=event.prev_hash,
        )
        if digest != event.hash:
            return Verification(
                False,
                expected_seq - 1,
                event.seq,
                f"isi peristiwa nomor {event.seq} ({event.kind}) telah diubah",
            )
        prev = event.hash
        expected_seq += 1
    head = (await session.exec(select(ChainHead).where(ChainHead.id == 1))).first()
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return Verification(
            False,
            expected_seq - 1,
            expected_seq,
            f"peristiwa terakhir hilang: rantai tercatat sampai nomor {head.seq}",
        )
    return Verification(True, expected_seq - 1)
