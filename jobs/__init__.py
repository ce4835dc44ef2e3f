"""Scheduled work: the outbox sender, the deadline sweeps and the audit seal. Jobs only
schedule and call the domain; the database is the truth. Nothing here
imports handlers/: what both need is in bot/chat.py."""

from __future__ import annotations

from bot.chat import SopApp, SopContext
from jobs.deadlines import DeadlineJobs
from jobs.outbox import OutboxSender
from jobs.seal import NAME as SEAL_JOB
from jobs.seal import SealJobs

# APScheduler skips a job over 1 s late by default; a busy bot must not.
JOB_KWARGS: dict[str, object] = {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1}


def schedule_jobs(
    app: SopApp, *, outbox_interval: float = 2.0, sweep_interval: float = 60.0
) -> None:
    """Start the sender and the timers; they are kept in the typed bot_data
    (BotData.sender, BotData.deadline_jobs): the deadline timer for the
    handlers to re-arm, the sender to be stopped with the bot."""
    services = app.bot_data.services
    sender = OutboxSender(services)
    sender.attach(app.bot)  # every commit that queues a message wakes it
    app.bot_data.sender = sender
    assert app.job_queue is not None, "install python-telegram-bot[job-queue]"
    app.job_queue.run_repeating(
        sender.job, interval=outbox_interval, first=0.5, name="outbox", job_kwargs=JOB_KWARGS
    )
    deadlines = DeadlineJobs(services.deadlines, JOB_KWARGS)
    app.bot_data.deadline_jobs = deadlines
    deadlines.arm(app)  # rebuild the timer from the open steps at start
    app.job_queue.run_repeating(
        deadlines.sweep,
        interval=sweep_interval,
        first=1,
        name="deadline-sweep",
        job_kwargs=JOB_KWARGS,
    )
    # The repeating sweep's first moment counts from now, not from when the
    # scheduler starts: after a start slower than a second, APScheduler skips
    # it to the next interval, and what fell due while the bot was down
    # would wait a minute. A one-shot sweep is run late instead of skipped.
    app.job_queue.run_once(
        deadlines.sweep, when=1, name="deadline-sweep-start", job_kwargs=JOB_KWARGS
    )

    async def prune_inbox(_context: SopContext) -> None:
        await services.inbox.prune()  # updates received more than two days ago

    app.job_queue.run_repeating(
        prune_inbox, interval=3600, first=600, name="prune-inbox", job_kwargs=JOB_KWARGS
    )

    async def checkpoint(_context: SopContext) -> None:
        await services.db.checkpoint()  # SQLite's WAL into its file, in a thread

    app.job_queue.run_repeating(
        checkpoint, interval=30, first=30, name="sqlite-checkpoint", job_kwargs=JOB_KWARGS
    )

    async def expire_held(_context: SopContext) -> None:
        await services.waiting.expire_held()  # files nobody placed within a day

    app.job_queue.run_repeating(
        expire_held, interval=3600, first=60, name="expire-held", job_kwargs=JOB_KWARGS
    )

    # The audit chain's head, signed and witnessed; AUDIT_SEAL_INTERVAL=0
    # (the tests' world) leaves sealing to `sopbot audit seal`.
    every = services.settings.audit_seal_interval
    if every > 0:
        seals = SealJobs(services.seals)
        app.job_queue.run_repeating(
            seals.tick, interval=every, first=every, name=SEAL_JOB, job_kwargs=JOB_KWARGS
        )
