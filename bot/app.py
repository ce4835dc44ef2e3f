"""Wiring: the python-telegram-bot Application, built from settings.

Handlers are registered in one ordered place (handlers.register); resources
are opened in post_init and closed in post_shutdown, so nothing happens at
import time and tests can build as many Applications as they like. Every
handler and job gets a SopContext (bot/chat.py), whose bot_data is a typed
BotData holding the services.

Updates come in through bot/intake.py (stored in the inbox before Telegram
is told they arrived), not python-telegram-bot's Updater, and are handled by
bot/processor.py (chats in parallel, each chat in order); `serve` runs the
Application's life around them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from urllib.parse import urlparse

from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError
from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes, Defaults

from bot.chat import BotData, SopApp, SopContext, command_menu, refresh_menu
from bot.clock import Clock
from bot.intake import POLL_TIMEOUT, Intake, WebhookOptions
from bot.members import MemberInfo
from bot.migrate import DatabaseBehind, DatabaseUnavailable
from bot.processor import ChatLanes
from bot.services import Services
from bot.settings import Settings
from bot.transport import AiohttpRequest

log = logging.getLogger(__name__)


def rate_limiter(messages_per_second: float) -> AIORateLimiter:
    """Telegram's flood limit, kept: one message at a time, evenly spaced,
    at most `messages_per_second` (MESSAGES_PER_SECOND, 29), bot-wide; no
    retries (the outbox honours a RetryAfter itself, pausing every send).

    Telegram refuses a bot more than about 30 messages in a second (429, and
    the outbox then pauses every send). AIORateLimiter's default is a leaky
    bucket of 30 refilled at 30 a second: a burst of 30 on top of that rate,
    up to 60 in the first second after a quiet moment. A queue owed at once
    (a form to every unit member) met a 429 every 30 messages and went out
    at half Telegram's pace (python -m bench, "delivery under Telegram's
    limit"). A bucket of one (aiolimiter's way to have no bursts) refilled 29
    times a second puts no two messages closer than 1/29 s: any 31 span more
    than a second, with 34 ms to spare for the network. A person's answer
    waits behind at most one message of a queue (the sender sends one at a
    time)."""
    return AIORateLimiter(
        overall_max_rate=1, overall_time_period=1 / messages_per_second, max_retries=0
    )


def build_application(services: Services, *, poll_interval_jobs: bool = True) -> SopApp:
    """The Application for these services, without an Updater: `serve` (or
    a test) starts it and an Intake feeds its update queue."""
    from handlers import register
    from jobs import schedule_jobs

    settings = services.settings
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    requests, updates = AiohttpRequest(pool=256), AiohttpRequest(pool=1)  # the builder's sizes
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.bot_api_base_url)
        .base_file_url(settings.bot_api_file_url)
        .request(requests)
        .get_updates_request(updates)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=services.texts.tz))
        .rate_limiter(rate_limiter(settings.messages_per_second))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .concurrent_updates(ChatLanes(services.inbox))
        .updater(None)
        .context_types(ContextTypes(context=SopContext, bot_data=BotData))
    )
    if settings.local_bot_api:
        builder = builder.local_mode(True)
    app = builder.build()
    app.bot_data.services = services
    app.bot_data.transports = (requests, updates)

    async def roles_changed(member: MemberInfo) -> None:
        await refresh_menu(app.bot, services, member)

    services.members.on_roles_changed = roles_changed  # a person's menu follows their roles
    register(app)
    if poll_interval_jobs:
        schedule_jobs(app)
    return app


async def _post_init(app: SopApp) -> None:
    services = app.bot_data.services
    await services.start()
    # The default menu is for people not enrolled; each member has their own,
    # set again at start so it follows an edited SOP, office file or template.
    await app.bot.set_my_commands(command_menu(services))
    for member in await services.members.active_members():
        await refresh_menu(app.bot, services, member)
    log.info("bot started as @%s", app.bot.username)


async def _post_shutdown(app: SopApp) -> None:
    await app.bot_data.services.close()


def webhook_options(settings: Settings) -> WebhookOptions:
    """Where to listen for Telegram's calls; the path is WEBHOOK_URL's own,
    and every call must carry WEBHOOK_SECRET (python-telegram-bot answers
    403 to one that does not)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return WebhookOptions(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlparse(settings.webhook_url).path.lstrip("/"),
        webhook_url=settings.webhook_url,
        secret_token=secret or None,
    )


async def start(
    app: SopApp, *, webhook: WebhookOptions | None = None, poll_timeout: int = POLL_TIMEOUT
) -> Intake:
    """Start the Application, then its intake (the stored updates first)."""
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.start()
    intake = Intake(app, app.bot_data.services.inbox)
    if webhook is not None:
        await intake.start_webhook(webhook)
    else:
        await intake.start_polling(long_poll=poll_timeout)
    return intake


async def stop(app: SopApp, intake: Intake | None) -> None:
    """The intake first, then the Application, which finishes the updates
    in hand (one cut short is begun again at the next start)."""
    if intake is not None:
        await intake.stop()
    if app.running:
        if app.job_queue is not None:
            # No job starts from here. stop() waits for the jobs running when
            # it begins to wait, then APScheduler's shutdown cancels any job
            # it finds running: one that fell due in between (the outbox
            # tick, a deadline) was cut off half way. What did not run is
            # not lost: the sender's last flush is below, and the deadline
            # timer is rebuilt from the database at the next start.
            app.job_queue.scheduler.pause()
        await app.stop()
    sender = app.bot_data.sender
    if sender is not None:
        await sender.stop()  # the flush a last commit woke
    if app.post_shutdown:
        await app.post_shutdown(app)
    await app.shutdown()
    for transport in app.bot_data.transports:  # closed already unless a start failed
        await transport.shutdown()


def keep_startup_objects() -> None:
    """Take what starting made (modules, templates, the SOP, SQLAlchemy's
    compiled statements: about 150,000 objects that live as long as the
    process) out of the garbage collector's sight. Every full collection
    walked them all, holding every update in flight: 112 ms at worst and
    426 ms in all over the bench's 3,000 updates, 7 and 10 ms since; what
    updates make is still collected."""
    gc.collect()
    gc.freeze()


async def serve(app: SopApp, webhook: WebhookOptions | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    intake: Intake | None = None
    try:
        intake = await start(app, webhook=webhook)
        keep_startup_objects()
        await done.wait()
    finally:
        await stop(app, intake)


def run_bot(settings: Settings, *, clock: Clock | None = None) -> int:
    """Run until interrupted; polling unless WEBHOOK_URL is set."""
    services = Services.build(settings, clock=clock)
    app = build_application(services)
    try:
        asyncio.run(serve(app, webhook_options(settings) if settings.webhook_url else None))
    except (DatabaseBehind, DatabaseUnavailable) as exc:
        print(str(exc))
        return 1
    except InvalidToken:
        # PTB's own message repeats the token; never print it.
        from bot.cli import NO_TOKEN

        print(NO_TOKEN.format(what="ditolak oleh Telegram"), file=sys.stderr)
        return 2
    except NetworkError as exc:
        # Only start-up gets here: later network errors are retried by the intake.
        print(
            f"Server Bot API tidak dapat dihubungi ({settings.bot_api_base_url}): {exc}. "
            "Periksa jaringan, atau BOT_API_BASE_URL di .env.",
            file=sys.stderr,
        )
        return 1
    return 0
