"""The outbox: messages the engine decided to send, delivered by jobs/.

Telegram sends have no idempotency key, so the promise is "nothing lost, at
most one duplicate, and the duplicate is on record": a row is marked
`sending_since` (committed) before the send and `sent` after it. A row found
still marked after a crash may have been delivered; it is sent again and an
event says so.

Reminders, escalations and digests are `office_hours_only`: whatever makes
them due (a retry, a restart), they go out only while the office is open,
and a reminder or escalation that is no longer owed when its turn comes is
dropped, with the reason on record, instead of sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database, dialect_of, table
from bot.models import (
    Assignment,
    Member,
    MemberRole,
    Notification,
    OutboxState,
    Run,
    RunState,
    RunStep,
    StepState,
)
from bot.views import ADMIN, OWING

MAX_ATTEMPTS = 6
# A message older than this is not edited: a short new message says what the
# edit would have said (an edit far up the chat goes unseen, and Telegram may
# refuse to edit an old message).
EDIT_WINDOW = timedelta(hours=48)
# How long an edit waits for the message it edits to go out first.
EDIT_WAIT_SECONDS = 5
BACKOFF_SECONDS = (2, 5, 15, 60, 300)
# Messages about lateness: pointless (and wrong) once the step is done.
LATENESS_TEMPLATES = ("reminder", "escalation")
# Noted in a session's info by `queue`: its commit owes a message.
OWED = "sopbot_outbox_owed"


class OfStep(Protocol):
    """What a kept message is about: a task, a unit's file."""

    @property
    def run_id(self) -> int: ...
    @property
    def run_step_id(self) -> int: ...
    @property
    def assignment_id(self) -> int | None: ...


@dataclass(frozen=True)
class SentMessage:
    """A message a handler sent itself, to be kept as a sent row."""

    message_id: int
    key: str
    member_id: int
    template: str
    context: dict[str, Any]
    run_id: int | None = None
    run_step_id: int | None = None
    assignment_id: int | None = None
    file_id: int | None = None

    @classmethod
    def about(
        cls,
        message_id: int,
        of: OfStep,
        *,
        key: str,
        member_id: int,
        template: str,
        context: dict[str, Any],
        file_id: int | None = None,
    ) -> SentMessage:
        """A message about a step's task or file: its run, step and
        assignment are what a settling of them looks for."""
        return cls(
            message_id,
            key=key,
            member_id=member_id,
            template=template,
            context=context,
            run_id=of.run_id,
            run_step_id=of.run_step_id,
            assignment_id=of.assignment_id,
            file_id=file_id,
        )


# The sender asks after every commit that owes a message and every 2 s.
_DUE = (
    select(Notification)
    .where(
        Notification.state == OutboxState.pending,
        col(Notification.not_before) <= bindparam("due_now"),
    )
    .order_by(col(Notification.id))
    .limit(bindparam("due_limit"))
)
# Built once per dialect: every /tugas and every note keeps its lines; a
# key kept already (the same line kept twice) is left as it is.
_KEEP = {
    "postgresql": pg_insert(table(Notification)).on_conflict_do_nothing(index_elements=["key"]),
    "sqlite": sqlite_insert(table(Notification)).on_conflict_do_nothing(index_elements=["key"]),
}
# A kept row's other columns, as the model has them for a message sent once.
_SENT_ROW = Notification(
    key="", member_id=0, template="", state=OutboxState.sent, attempts=1
).model_dump(
    include={
        "state",
        "office_hours_only",
        "silent",
        "attempts",
        "sending_since",
        "last_error",
        "edits_id",
    }
)


async def keep_sent(s: AsyncSession, messages: Sequence[SentMessage], now: datetime) -> None:
    """Messages a handler sent itself, kept as sent rows in the caller's
    transaction (so a later row may edit them), in one insert that leaves a
    key kept already as it is: a command that sends a message per task
    (/tugas) costs the same one statement for one task as for ten. Nothing
    is owed: the sender is not woken."""
    kept: set[str] = set()
    rows = []
    for m in messages:
        if m.key in kept:
            continue
        kept.add(m.key)
        rows.append(  # a plain row: building the model to dump it cost more than the insert
            {
                **_SENT_ROW,
                "key": m.key,
                "member_id": m.member_id,
                "template": m.template,
                "context": m.context,
                "run_id": m.run_id,
                "run_step_id": m.run_step_id,
                "assignment_id": m.assignment_id,
                "file_id": m.file_id,
                "created_at": now,
                "not_before": now,
                "sent_at": now,
                "telegram_message_id": m.message_id,
            }
        )
    if rows:  # one INSERT with a row per message, the rows as parameters
        dialect = dialect_of(s)
        await s.exec(_KEEP[dialect], params=rows)


async def queue(
    s: AsyncSession,
    *,
    key: str,
    member_id: int,
    template: str,
    context: dict[str, Any],
    now: datetime,
    run_id: int | None = None,
    run_step_id: int | None = None,
    assignment_id: int | None = None,
    file_id: int | None = None,
    not_before: datetime | None = None,
    edits_id: int | None = None,
    office_hours_only: bool = False,
    supersede: bool = False,
    silent: bool = False,
) -> Notification | None:
    """The one way a message is owed: a row in the caller's transaction.

    A key already queued is skipped (None), so whoever decides a message may
    decide it again (a sweep twice, a redelivered update) and it goes out
    once; the unique index on the key backs this up when two transactions
    race. With `edits_id` the row edits that earlier message instead.
    `office_hours_only` rows (reminders, escalations, the digest) wait for
    opening. With `supersede`, older pending rows of the same template to the
    same person about the same step and assignment, not yet claimed by a
    sender, are dropped: one person gets one reminder per step at a time.
    A `silent` row arrives without a sound (a line the reader may ignore).
    """
    exists = (await s.exec(select(Notification.id).where(Notification.key == key))).first()
    if exists is not None:
        return None
    row = Notification(
        key=key,
        member_id=member_id,
        template=template,
        context=context,
        run_id=run_id,
        run_step_id=run_step_id,
        assignment_id=assignment_id,
        file_id=file_id,
        created_at=now,
        not_before=not_before or now,
        edits_id=edits_id,
        office_hours_only=office_hours_only,
        silent=silent,
    )
    s.add(row)
    await s.flush()
    # Who is owed a message once this commits: the sender is woken (Outbox.on_owed).
    s.info.setdefault(OWED, set()).add(member_id)
    if supersede:
        older = (
            await s.exec(
                select(Notification).where(
                    Notification.state == OutboxState.pending,
                    # A row a sender has claimed may already be on its way:
                    # it is never superseded, or the log would deny a delivery.
                    col(Notification.sending_since).is_(None),
                    Notification.template == template,
                    Notification.member_id == member_id,
                    col(Notification.run_step_id).is_(None)
                    if run_step_id is None
                    else Notification.run_step_id == run_step_id,
                    col(Notification.assignment_id).is_(None)
                    if assignment_id is None
                    else Notification.assignment_id == assignment_id,
                    col(Notification.id) != row.id,
                )
            )
        ).all()
        for old in older:
            await drop(s, old, "superseded", now)
    return row


async def drop(s: AsyncSession, n: Notification, reason: str, now: datetime) -> None:
    """Mark a pending row as no longer owed and say why in the event log.

    The key is freed (suffixed with the row id) so that the same reminder may
    be queued again if it becomes owed again, e.g. after a paused run resumes.
    """
    n.state, n.sending_since, n.last_error = OutboxState.dropped, None, reason
    n.key = f"{n.key}~{n.id}"
    s.add(n)
    await append_event(
        s,
        "notification_dropped",
        at=now,
        run_id=n.run_id,
        details={
            "notification_id": n.id,
            "member_id": n.member_id,
            "template": n.template,
            "reason": reason,
        },
    )


async def stale_reason(s: AsyncSession, n: Notification, now: datetime) -> str | None:
    """Why a reminder or escalation is no longer owed, or None if it still is."""
    if n.template not in LATENESS_TEMPLATES:
        return None
    run = await s.get(Run, n.run_id) if n.run_id is not None else None
    if run is not None and run.state != RunState.open:
        return f"run_{run.state.value}"
    if run is not None and run.reminders_paused:
        return "run_paused"
    rs = await s.get(RunStep, n.run_step_id) if n.run_step_id is not None else None
    if rs is not None:
        if rs.state != StepState.open:
            return "step_closed"
        if rs.due_at is None or rs.due_at >= now:
            return "not_late"  # the due time was moved later
    a = await s.get(Assignment, n.assignment_id) if n.assignment_id is not None else None
    if a is not None and a.state not in OWING:
        return "assignment_settled"
    return None


class Outbox:
    """The messages decided but not yet delivered: claimed, sent, retried or
    given up one row at a time, so a crash loses none and repeats at most one."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        calendar: WorkCalendar | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.calendar = calendar
        self.max_attempts = max_attempts
        # Telegram's flood limits are bot-wide: after a RetryAfter nothing is sent.
        self.paused_until: datetime | None = None
        self._owed: list[Callable[[frozenset[int]], None]] = []
        db.after_commit(self._committed)

    def on_owed(self, wake: Callable[[frozenset[int]], None]) -> None:
        """Call `wake` with the members owed a message after every commit
        that queued one, whoever committed it (a command, a sweep, a job):
        the sender then sends at once, and an update that queued nothing
        costs the sender nothing."""
        self._owed.append(wake)

    def _committed(self, info: dict[Any, Any]) -> None:
        owed = info.get(OWED)
        if owed:
            for wake in self._owed:
                wake(frozenset(owed))

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` (Telegram's RetryAfter)."""
        until = self.clock.now() + timedelta(seconds=seconds)
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until

    def paused(self) -> bool:
        return self.paused_until is not None and self.clock.now() < self.paused_until

    async def due(self, limit: int = 50) -> list[Notification]:
        """Pending rows whose time has come; none while sending is paused."""
        if self.paused():
            return []
        async with self.db.session() as s:
            rows = await s.exec(_DUE, params={"due_now": self.clock.now(), "due_limit": limit})
            return list(rows.all())

    async def begin(self, notification_id: int) -> tuple[Notification, int] | None:
        """Claim a row for sending; returns it with the recipient's chat id,
        or None when it is not to be sent now: another sender took it, it has
        used up its attempts (failed), it waits for office hours (deferred to
        the next opening), or it is no longer owed (dropped)."""
        async with self.db.transaction() as s:
            n = (
                await s.exec(
                    select(Notification).where(Notification.id == notification_id).with_for_update()
                )
            ).first()
            if n is None or n.state != OutboxState.pending:
                return None
            member = await s.get(Member, n.member_id)
            if member is None:
                return None
            now = self.clock.now()
            if n.attempts >= self.max_attempts:
                # E.g. a crash on every try: sending_since was never cleared.
                await self._fail(s, n, n.last_error or "gave up after repeated attempts")
                return None
            if n.office_hours_only and self.calendar is not None and not self.calendar.is_open(now):
                # sending_since stays: a send cut short by a crash is still on record.
                n.not_before = self.calendar.next_opening(now)
                s.add(n)
                return None
            reason = await stale_reason(s, n, now)
            if reason is None and n.edits_id is not None:
                target = await s.get(Notification, n.edits_id)
                if target is not None and target.state == OutboxState.pending:
                    n.not_before = now + timedelta(seconds=EDIT_WAIT_SECONDS)
                    s.add(n)
                    return None
                if target is None or target.state != OutboxState.sent:
                    reason = "message_not_sent"  # nothing to edit
            if reason is not None:
                await drop(s, n, reason, now)
                return None
            if n.sending_since is not None:
                await append_event(
                    s,
                    "possible_duplicate",
                    at=now,
                    run_id=n.run_id,
                    details={
                        "notification_id": n.id,
                        "key": n.key,
                        "member_id": n.member_id,
                        "first_attempt": n.sending_since.isoformat(),
                    },
                )
            n.sending_since = now
            n.attempts += 1
            s.add(n)
            return n, member.telegram_id

    async def record_sent(self, message: SentMessage) -> None:
        """Keep a message a handler sent itself (an answer without buttons,
        e.g. a receipt) as a sent row, so that a later row may edit it, as
        after a restart too. One with buttons is kept by `Settling.keep`."""
        async with self.db.transaction() as s:
            await keep_sent(s, [message], self.clock.now())

    async def sent_row(self, key: str) -> Notification | None:
        """A sent row by its key, with its message id (None if not sent)."""
        async with self.db.session() as s:
            row = (await s.exec(select(Notification).where(Notification.key == key))).first()
        if row is None or row.state != OutboxState.sent or row.telegram_message_id is None:
            return None
        return row

    async def update_context(self, notification_id: int, context: dict[str, Any]) -> None:
        """What a sent row's message now says, after its sender edited it."""
        async with self.db.transaction() as s:
            row = await s.get(Notification, notification_id)
            if row is not None:
                row.context = context
                s.add(row)

    async def edit_owed(self, member_id: int, message_id: int) -> bool:
        """Is an edit of this person's message `message_id` queued or made?
        Every edit takes the message's buttons away, so a press on it leaves
        them to that edit: removing them as well, before or after it, would
        be an edit that changes nothing ("message is not modified")."""
        target = aliased(Notification)
        async with self.db.session() as s:
            row = (
                await s.exec(
                    select(Notification.id)
                    .join(target, col(target.id) == col(Notification.edits_id))
                    .where(
                        target.member_id == member_id,
                        target.telegram_message_id == message_id,
                        col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
                    )
                )
            ).first()
        return row is not None

    async def edit_target(self, n: Notification) -> tuple[int, Notification] | None:
        """The message an edit row edits (its Telegram id, and its row to
        render it again), or None when it is too old to edit or has no id."""
        if n.edits_id is None:
            return None
        async with self.db.session() as s:
            target = await s.get(Notification, n.edits_id)
        if target is None or target.telegram_message_id is None or target.sent_at is None:
            return None
        if self.clock.now() - target.sent_at >= EDIT_WINDOW:
            return None
        return target.telegram_message_id, target

    async def sent(self, notification_id: int, message_id: int | None) -> None:
        async with self.db.transaction() as s:
            n = await s.get(Notification, notification_id)
            if n is None:
                return
            n.state, n.sent_at, n.telegram_message_id = (
                OutboxState.sent,
                self.clock.now(),
                message_id,
            )
            n.last_error = None
            s.add(n)
            member = await s.get(Member, n.member_id)
            if member is not None and member.blocked_at is not None:
                member.blocked_at = None
                s.add(member)

    async def retry_later(
        self, notification_id: int, seconds: float, error: str, *, count_attempt: bool = True
    ) -> bool:
        """Put a row back for later; False (and failed) once out of attempts."""
        async with self.db.transaction() as s:
            n = await s.get(Notification, notification_id)
            if n is None:
                return False
            n.sending_since = None
            n.last_error = error[:500]
            if not count_attempt:
                n.attempts = max(0, n.attempts - 1)
            if n.attempts >= self.max_attempts:
                await self._fail(s, n, error)
                return False
            n.not_before = self.clock.now() + timedelta(seconds=seconds)
            s.add(n)
            return True

    def backoff(self, attempts: int) -> float:
        return BACKOFF_SECONDS[min(max(attempts - 1, 0), len(BACKOFF_SECONDS) - 1)]

    async def failed(self, notification_id: int, error: str) -> None:
        async with self.db.transaction() as s:
            n = await s.get(Notification, notification_id)
            if n is not None:
                await self._fail(s, n, error)

    async def _fail(self, s: AsyncSession, n: Notification, error: str) -> None:
        now = self.clock.now()
        n.state, n.sending_since, n.last_error = OutboxState.failed, None, error[:500]
        s.add(n)
        await append_event(
            s,
            "delivery_failed",
            at=now,
            run_id=n.run_id,
            details={
                "notification_id": n.id,
                "member_id": n.member_id,
                "template": n.template,
                "error": error[:500],
            },
        )
        if n.template == "delivery_failed":
            return
        member = await s.get(Member, n.member_id)
        admins = (await s.exec(select(MemberRole.member_id).where(MemberRole.role == ADMIN))).all()
        for admin_id in sorted(set(admins)):
            await queue(
                s,
                key=f"delivery_failed:{n.id}:{admin_id}",
                member_id=admin_id,
                template="delivery_failed",
                context={
                    "name": member.name if member else "?",
                    "template": n.template,
                    "error": error[:300],
                },
                now=now,
                run_id=n.run_id,
            )

    async def blocked(self, notification_id: int, error: str) -> None:
        """The person blocked the bot: record it, and stop trying."""
        async with self.db.transaction() as s:
            n = await s.get(Notification, notification_id)
            if n is None:
                return
            now = self.clock.now()
            n.state, n.sending_since, n.last_error = OutboxState.blocked, None, error[:500]
            s.add(n)
            member = await s.get(Member, n.member_id)
            if member is not None and member.blocked_at is None:
                member.blocked_at = now
                s.add(member)
                await append_event(
                    s,
                    "member_blocked_bot",
                    at=now,
                    run_id=n.run_id,
                    details={"member_id": member.id, "name": member.name},
                )
            # Later messages to the same person would fail the same way.
            later = (
                await s.exec(
                    select(Notification).where(
                        Notification.member_id == n.member_id,
                        Notification.state == OutboxState.pending,
                        col(Notification.id) != n.id,
                    )
                )
            ).all()
            for other in later:
                other.state, other.last_error = OutboxState.blocked, "blocked"
                s.add(other)
