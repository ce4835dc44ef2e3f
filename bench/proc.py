"""A bot process for the benchmark (bench/__main__.py spawns it):

    python -m bench.proc sopbot   the real Application (bot.app.build_application)
    python -m bench.proc bare     a bare python-telegram-bot bot: one handler
                                  that replies to a message, one that answers a press

Both take the fake server from BOT_TOKEN / BOT_API_BASE_URL (and the
sopbot its database and files from the usual settings), poll until SIGINT,
and time each update inside `process_update` (the wrapper the tests use to
see an update's handling), writing each time, in seconds, as a line of
BENCH_TIMES. With BENCH_LIMITER=off, AIORateLimiter is replaced by a
pass-through: the CPU path, not Telegram's 30 messages a second (the
delivery under the flood limit keeps it, as in production).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)


class NoLimiter(BaseRateLimiter[None]):
    """Sends at once: what the bot costs, without the flood limit's pacing."""

    def __init__(self, **_: Any) -> None:
        pass

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: Any,
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Any:
        return await callback(*args, **kwargs)


def timed(app: Application[Any, Any, Any, Any, Any, Any], out: Path | None) -> None:
    """Time each update; the times go to `out`, a line each, as they come
    (a process stopped the hard way still leaves them)."""
    original = app.process_update
    sink = out.open("a", buffering=1) if out else None  # noqa: SIM115 (open for the process's life)

    async def process_update(update: object) -> None:
        start = time.perf_counter()
        try:
            await original(update)
        finally:
            if sink is not None:
                sink.write(f"{time.perf_counter() - start:.6f}\n")

    app.process_update = process_update  # type: ignore[method-assign]


async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer("ok")
    elif update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, "ok")


def bare() -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        ApplicationBuilder()
        .token(os.environ["BOT_TOKEN"])
        .base_url(os.environ["BOT_API_BASE_URL"])
        .base_file_url(os.environ["BOT_API_FILE_URL"])
        .build()
    )
    app.add_handler(MessageHandler(filters.ALL, reply))
    app.add_handler(CallbackQueryHandler(reply))
    return app


def sopbot() -> Application[Any, Any, Any, Any, Any, Any]:
    import bot.app
    from bot.services import Services
    from bot.settings import Settings

    if os.environ.get("BENCH_LIMITER") == "off":
        bot.app.AIORateLimiter = NoLimiter  # type: ignore[attr-defined,misc]
    return bot.app.build_application(Services.build(Settings()))


def main(kind: str) -> None:
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # `python -m bench --profile DIR`: where the time goes, per process
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            serve(kind)
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile}/{kind}.prof")
        return
    serve(kind)


def serve(kind: str) -> None:
    app = sopbot() if kind == "sopbot" else bare()
    out = os.environ.get("BENCH_TIMES")
    timed(app, Path(out) if out else None)
    if kind == "sopbot":
        # As `sopbot run` runs it: the inbox's intake (it stores each batch
        # before asking for the next), the Application has no Updater.
        import asyncio

        import bot.app

        asyncio.run(bot.app.serve(app))  # type: ignore[arg-type]
        return
    app.run_polling(allowed_updates=Update.ALL_TYPES, poll_interval=0, timeout=1)


if __name__ == "__main__":
    main(sys.argv[1])
