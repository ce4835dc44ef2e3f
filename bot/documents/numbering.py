"""Letter numbers: a counter per office and year, never giving a number twice.

The guarantee is the database's, not a check in Python: the counter row is
advanced by one `UPDATE ... SET last = last + 1 ... RETURNING last` (the
row lock on PostgreSQL, the write lock every write transaction takes at
BEGIN on SQLite, serialise two runs asking at the same moment), and every
number given is a row of `LetterNumber` under UNIQUE (office, year, number),
so even a counter reset by hand could not hand out a number twice.

When is a number drawn? In the transaction that opens the step whose task
carries the letter (the draft needs it), and once per step opening
(UNIQUE run_step_id): a crash before that transaction commits rolls the
counter back with everything else, so the number is not lost; once it has
committed the number belongs to that opening, and finishing the step after
a restart (or a retried command) finds the same row instead of drawing
again, so no number is repeated. Drawing when the step is finished instead
would leave the draft without its number. A number whose run is later
cancelled, or which the sekretaris replaced by another, stays used: it is
listed with its run and state (`sopbot letters`), never given again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import LetterCounter, LetterNumber, LetterNumberState, Run

ROMAN_MONTHS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


def format_number(template: str, number: int, local: datetime) -> str:
    """The number as the office writes it: `{nomor}`, `{tahun}`, `{bulan}`
    and `{bulan_romawi}` (e.g. XI) in the office file's `number_format`;
    Python's format specs apply (`{nomor:03d}` gives 007)."""
    return template.format(
        nomor=number,
        tahun=local.year,
        bulan=local.month,
        bulan_romawi=ROMAN_MONTHS[local.month - 1],
    )


async def _next(s: AsyncSession, office: str, year: int) -> int:
    """Advance the office's counter for the year by one, atomically, and
    return the new value; the row is made on the year's first draw."""
    values = {"office": office, "year": year, "last": 0}
    bind = s.get_bind()
    if bind.dialect.name == "postgresql":
        await s.exec(pg_insert(LetterCounter).values(**values).on_conflict_do_nothing())
    else:
        await s.exec(sqlite_insert(LetterCounter).values(**values).on_conflict_do_nothing())
    result = await s.exec(
        update(LetterCounter)
        .where(col(LetterCounter.office) == office, col(LetterCounter.year) == year)
        .values(last=col(LetterCounter.last) + 1)
        .returning(col(LetterCounter.last))
    )
    return int(result.scalar_one())


async def draw(
    s: AsyncSession,
    *,
    office: str,
    template: str,
    local: datetime,
    run_id: int,
    run_step_id: int,
) -> LetterNumber:
    """The number for a step opening's letter, in the caller's transaction:
    the one already drawn for it, or the next of `local`'s year."""
    existing = (
        await s.exec(select(LetterNumber).where(LetterNumber.run_step_id == run_step_id))
    ).first()
    if existing is not None:
        return existing
    number = await _next(s, office, local.year)
    row = LetterNumber(
        office=office,
        year=local.year,
        number=number,
        text=format_number(template, number, local),
        run_id=run_id,
        run_step_id=run_step_id,
        issued_at=local,
    )
    s.add(row)
    await s.flush()
    return row


async def of_step(s: AsyncSession, run_step_id: int) -> LetterNumber | None:
    return (
        await s.exec(select(LetterNumber).where(LetterNumber.run_step_id == run_step_id))
    ).first()


async def settle(s: AsyncSession, run_step_id: int, written: str) -> LetterNumber | None:
    """The step is done with `written` as the letter's number: the drawn
    number is used when it is the one written, else replaced (and stays
    used up)."""
    row = await of_step(s, run_step_id)
    if row is None:
        return None
    same = " ".join(written.split()).casefold() == row.text.casefold()
    row.state = LetterNumberState.used if same else LetterNumberState.replaced
    s.add(row)
    return row


@dataclass(frozen=True)
class IssuedNumber:
    """A line of the year's list of numbers."""

    number: int
    text: str
    run_id: int
    run_title: str
    run_state: str
    state: str
    issued_at: datetime
    written: str | None  # the number the run's letter finally carries


async def issued(s: AsyncSession, office: str, year: int) -> list[IssuedNumber]:
    """Every number given in the year, in order, with its run and state."""
    rows = (
        await s.exec(
            select(LetterNumber, Run)
            .join(Run, col(Run.id) == col(LetterNumber.run_id))
            .where(LetterNumber.office == office, LetterNumber.year == year)
            .order_by(col(LetterNumber.number))
        )
    ).all()
    return [
        IssuedNumber(
            n.number,
            n.text,
            run.id or 0,
            run.title,
            run.state.value,
            n.state.value,
            n.issued_at,
            run.letter_number,
        )
        for n, run in rows
    ]
