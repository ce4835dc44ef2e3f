"""The morning digest: once a working day, at opening, the digest roles
(office file) get each open run's late and due steps with the people who
hold them. Queued once per day and person; none while no run is open.

"At opening" means the first sweep at or after the day's opening and
within its first DIGEST_WINDOW working minutes (07:30-08:00 on a normal
day). Later in the day no digest goes out, not even the first one of a day
that had none: a run opened at 10:00 is news the head was just given by
the run itself, and a bot that was down all morning sends no "morning"
summary at 14:00. The next morning's digest covers it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select

from bot.models import Member, MemberRole, Notification
from bot.office import OfficeConfig
from bot.run import Engine
from bot.views import iso

log = logging.getLogger(__name__)

# Working minutes after the day's opening within which the digest goes out.
DIGEST_WINDOW = 30


class Digest:
    def __init__(self, engine: Engine, office: OfficeConfig) -> None:
        self.engine = engine
        self.office = office
        # Vacant digest roles already recorded by this process, so a sweep
        # every minute does not repeat the warning.
        # Today's only (send() drops older days'): bounded by the roles.
        self._warned: set[str] = set()

    def in_window(self, now: datetime) -> bool:
        """Is `now` within the first DIGEST_WINDOW working minutes of its day?"""
        calendar = self.engine.calendar
        opening = calendar.opening_of_day(now.astimezone(calendar.tz).date())
        if opening is None or now < opening:
            return False
        return now < calendar.add_working_minutes(opening, DIGEST_WINDOW)

    async def send(self, now: datetime) -> int:
        """The morning summary for the digest roles (office file), once a day
        at opening (see the module docstring): each late or due step with
        the people who hold it. Computed only while someone is still owed
        today's: the sweeps after it, every minute of the window, read two
        small queries and stop."""
        today = now.astimezone(self.engine.calendar.tz).date()
        if not self.in_window(now):
            return 0
        async with self.engine.db.session() as s:
            rows = (
                await s.exec(
                    select(MemberRole.member_id, MemberRole.role)
                    .join(Member, col(Member.id) == col(MemberRole.member_id))
                    .where(
                        col(MemberRole.role).in_(self.office.digest_roles),
                        col(Member.active).is_(True),
                    )
                )
            ).all()
            keys = {f"digest:{today.isoformat()}:{m}": m for m in {m for m, _ in rows}}
            queued = set(
                (
                    await s.exec(
                        select(Notification.key).where(col(Notification.key).in_(list(keys)))
                    )
                ).all()
            )
        held = {role for _, role in rows}
        self._warned = {m for m in self._warned if m.startswith(f"digest:{today.isoformat()}:")}
        vacant = [
            role
            for role in self.office.digest_roles
            if role not in held and f"digest:{today.isoformat()}:{role}" not in self._warned
        ]
        owed = sorted(m for k, m in keys.items() if k not in queued)
        if not owed and not vacant:
            return 0
        statuses = await self.engine.queries.run_status()
        if not statuses:
            return 0  # nothing runs: no digest that says so every morning
        end_of_day = self.engine.calendar.intervals(today)
        day_end = end_of_day[-1][1] if end_of_day else now
        holders = await self.engine.queries.open_holders()
        runs = []
        for run in statuses:
            open_steps = [st for st in run.steps if st.state == "open"]
            runs.append(
                {
                    "title": run.title,
                    "paused": run.reminders_paused,
                    "late": [
                        {
                            "number": st.number,
                            "uraian": st.uraian,
                            "actors": st.actors,
                            "late_minutes": st.late_minutes,
                            "pending_units": st.pending_units,
                            "holders": holders.get(st.run_step_id, []),
                        }
                        for st in open_steps
                        if st.late_minutes
                    ],
                    "due_today": [
                        {
                            "number": st.number,
                            "uraian": st.uraian,
                            "actors": st.actors,
                            "due_at": iso(st.due_at),
                            "holders": holders.get(st.run_step_id, []),
                        }
                        for st in open_steps
                        if not st.late_minutes and st.due_at and st.due_at <= day_end
                    ],
                    "open": len(open_steps),
                }
            )
        count = 0
        async with self.engine.db.transaction() as s:
            for role in vacant:
                self._warned.add(f"digest:{today.isoformat()}:{role}")
                log.warning("morning digest: nobody holds the digest role %r", role)
                await self.engine.kit.event(
                    s, "digest_role_vacant", run=None, actor_id=None, role=role
                )
            for member_id in owed:
                row = await self.engine.messages.notify(
                    s,
                    member_id,
                    "digest",
                    f"digest:{today.isoformat()}:{member_id}",
                    {"date": iso(now), "runs": runs},
                    office_hours_only=True,
                )
                count += row is not None
        return count
