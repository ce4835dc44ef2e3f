"""A bot process for the benchmark (bench/__main__.py spawns it):

    python -m bench.proc sopbot   the real Application (bot.app.build_application)
    python -m bench.proc bare     a bare python-telegram-bot bot: one handler
                                  that replies to a message, one that answers a press
    python -m bench.proc shaped   the bare bot answering as sopbot answers the
                                  benchmark's mix (its requests, texts of like
                                  length, buttons), no database, no rules

Each takes the fake server from BOT_TOKEN / BOT_API_BASE_URL (and the
sopbot its database and files from the usual settings), poll until SIGINT,
and time each update inside `process_update` (the wrapper the tests use to
see an update's handling), writing each time, in seconds, as a line of
BENCH_TIMES; given BENCH_GC, the garbage collector's full collections
from the first update on are timed too (the longest, their total and
count, at exit). With BENCH_LIMITER=off, AIORateLimiter is replaced by a
pass-through: the CPU path, not Telegram's 30 messages a second (the
delivery under the flood limit keeps it, as in production).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
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


# Set at the first update: the collections of the start (sopbot's own full
# collection before it freezes what the start made) are not the load's.
HANDLING = threading.Event()


def timed(app: Application[Any, Any, Any, Any, Any, Any], out: Path | None) -> None:
    """Time each update; the times go to `out`, a line each, as they come
    (a process stopped the hard way still leaves them)."""
    original = app.process_update
    sink = out.open("a", buffering=1) if out else None  # noqa: SIM115 (open for the process's life)

    async def process_update(update: object) -> None:
        HANDLING.set()
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


# What sopbot answers to each update of the benchmark's mix (bench/__main__.py),
# counted on the fake server with 3 open runs: /tugas a header and a line
# with buttons per task, /status a message per open run with one button, a
# note one message, a press the answer to the press.
TASK_LINE = (
    "<b>Langkah 2 \u00b7 Kegiatan {n}</b>\n"
    "Penyusunan rencana pengumpulan data kinerja dan format isian untuk "
    "setiap bidang.\nBatas: Senin 9 November 2026 16:00 WIB\n"
)
STATUS_LINE = (
    "<b>Kegiatan {n}</b> \u00b7 Mekanisme Pengumpulan Data Kinerja\n"
    "Langkah 2 dari 15 berjalan; 1 selesai. Terlambat: tidak ada.\n"
)


def task_buttons(n: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("\U0001f4ce Unggah berkas", callback_data=f"up:{n}:0")],
            [
                InlineKeyboardButton("\u2705 Selesai", callback_data=f"dn:{n}"),
                InlineKeyboardButton("\U0001f465 Serahkan", callback_data=f"dlg:{n}"),
            ],
        ]
    )


async def answer_as_sopbot(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer("Kirim berkasnya di sini.")
        return
    chat = update.effective_chat
    text = update.effective_message.text if update.effective_message else ""
    if chat is None:
        return
    if text == "/tugas":
        await context.bot.send_message(chat.id, "Anda punya <b>3 tugas</b> terbuka:")
        for n in range(1, 4):
            await context.bot.send_message(
                chat.id, TASK_LINE.format(n=n), reply_markup=task_buttons(n)
            )
    elif text == "/status":
        for n in range(1, 4):
            table = InlineKeyboardMarkup(
                [[InlineKeyboardButton("\U0001f4cb Tabel lengkap", callback_data=f"st:{n}")]]
            )
            await context.bot.send_message(chat.id, STATUS_LINE.format(n=n), reply_markup=table)
    else:
        await context.bot.send_message(chat.id, "\U0001f4dd Catatan disimpan untuk Langkah 2.")


def shaped() -> Application[Any, Any, Any, Any, Any, Any]:
    """The bare bot answering as sopbot answers (the same requests per kind
    of update, through the bot's own transport and defaults), with no
    database and no rules: what the messages alone cost, the most sopbot
    could do with this mix (bench/__main__.py)."""
    from telegram.constants import ParseMode
    from telegram.ext import Defaults

    from bot.transport import AiohttpRequest

    app = (
        ApplicationBuilder()
        .token(os.environ["BOT_TOKEN"])
        .base_url(os.environ["BOT_API_BASE_URL"])
        .base_file_url(os.environ["BOT_API_FILE_URL"])
        .request(AiohttpRequest(pool=256))
        .get_updates_request(AiohttpRequest(pool=1))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .build()
    )
    app.add_handler(MessageHandler(filters.ALL, answer_as_sopbot))
    app.add_handler(CallbackQueryHandler(answer_as_sopbot))
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


def collector_pauses(out: Path) -> None:
    """Time the garbage collector's full collections (the ones that walk
    every object the process holds) from the first update on, and write, at exit, the longest pause
    and their total in seconds: a full collection holds every update in
    flight (bot/app.py, keep_startup_objects)."""
    import atexit
    import gc

    pauses: list[float] = []
    began = [0.0]

    def note(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2 or not HANDLING.is_set():
            return
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - began[0])

    def write() -> None:
        out.write_text(f"{max(pauses, default=0.0)} {sum(pauses)} {len(pauses)}\n")

    gc.callbacks.append(note)
    atexit.register(write)


def serve(kind: str) -> None:
    app = {"sopbot": sopbot, "bare": bare, "shaped": shaped}[kind]()
    out = os.environ.get("BENCH_TIMES")
    timed(app, Path(out) if out else None)
    pauses = os.environ.get("BENCH_GC")
    if pauses:
        collector_pauses(Path(pauses))
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
