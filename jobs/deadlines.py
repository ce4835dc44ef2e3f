"""Deadline timers. The database is the truth: a sweep every minute, plus a
one-shot timer at the next moment something falls due, rebuilt from the
open steps at start and after every sweep."""

from __future__ import annotations

import logging

from bot.chat import SopApp, SopContext
from bot.deadlines import Deadlines

log = logging.getLogger(__name__)

TIMER = "deadline-next"


class DeadlineJobs:
    def __init__(self, deadlines: Deadlines, job_kwargs: dict[str, object]) -> None:
        self.deadlines = deadlines
        self.job_kwargs = job_kwargs

    async def sweep(self, context: SopContext) -> None:
        result = await self.deadlines.sweep()
        if result.reminders or result.escalations or result.digests:
            log.info("deadline sweep: %s", result)
            sender = context.bot_data.sender
            if sender is not None:
                await sender.flush(context.bot)
        self.arm(context.application)

    def arm(self, app: SopApp) -> None:
        """(Re)set the one-shot timer for the next moment anything falls due."""
        assert app.job_queue is not None
        for job in app.job_queue.get_jobs_by_name(TIMER):
            job.schedule_removal()

        async def fire(context: SopContext) -> None:
            await self.sweep(context)

        async def arm_from_db(context: SopContext) -> None:
            moment = await self.deadlines.next_moment()
            if moment is not None and app.job_queue is not None:
                # A delay, not a date: the domain clock may be a test's clock.
                delay = max(0.0, (moment - self.deadlines.clock.now()).total_seconds())
                app.job_queue.run_once(fire, when=delay, name=TIMER, job_kwargs=self.job_kwargs)

        app.job_queue.run_once(arm_from_db, when=0, name=TIMER, job_kwargs=self.job_kwargs)
