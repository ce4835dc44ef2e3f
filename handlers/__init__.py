"""Telegram in, engine calls out. `register` is the one ordered list of
handlers; the order is the order python-telegram-bot tries them."""

from __future__ import annotations

from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.chat import SopApp, SopContext
from bot.verbs import Verb, pattern
from handlers import admin, buttons, commands, errors, start, text, uploads
from handlers.buttons import Handler


def press(verb: Verb, callback: Handler) -> CallbackQueryHandler[SopContext, None]:
    """The handler of one verb's buttons: its data must match the verb's
    pattern (bot/verbs.py), the verb and as many ids as it carries."""
    return CallbackQueryHandler(callback, pattern=pattern(verb))


def register(app: SopApp) -> None:
    # Private chats only; an edited message is not a second answer.
    private = filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED
    # An update reaches these once, stored in the inbox (bot/inbox.py): a
    # redelivery of one already handled never gets here.
    app.add_handler(CommandHandler("start", start.start, filters=private))
    app.add_handler(CommandHandler(["bantuan", "help"], commands.bantuan, filters=private))
    app.add_handler(CommandHandler("mulai", commands.mulai, filters=private))
    app.add_handler(CommandHandler("tugas", commands.tugas, filters=private))
    app.add_handler(CommandHandler("status", commands.status, filters=private))
    app.add_handler(CommandHandler("riwayat", commands.riwayat, filters=private))
    app.add_handler(CommandHandler("laporan", commands.laporan, filters=private))
    app.add_handler(CommandHandler("batal", commands.batal, filters=private))
    app.add_handler(CommandHandler("hentikan", commands.hentikan, filters=private))
    app.add_handler(CommandHandler("anggota", admin.anggota, filters=private))
    app.add_handler(CommandHandler("undang", admin.undang, filters=private))
    app.add_handler(CommandHandler("cabut", admin.cabut, filters=private))
    app.add_handler(CommandHandler("jeda", admin.jeda, filters=private))
    app.add_handler(CommandHandler("lanjutkan", admin.lanjutkan, filters=private))
    app.add_handler(CommandHandler("tenggat", admin.tenggat, filters=private))
    # Buttons: one handler per verb, then one for data no verb matches
    # (forged, or from an older version), answered as a bad button.
    app.add_handler(press(Verb.ok, buttons.ok))
    app.add_handler(press(Verb.send, buttons.send))
    app.add_handler(press(Verb.dec, buttons.dec))
    app.add_handler(press(Verb.up, buttons.up))
    app.add_handler(press(Verb.mtg, buttons.mtg))
    app.add_handler(press(Verb.mok, buttons.mok))
    app.add_handler(press(Verb.view, buttons.view))
    app.add_handler(press(Verb.cls, buttons.cls))
    app.add_handler(press(Verb.acc, buttons.acc))
    app.add_handler(press(Verb.ret, buttons.ret))
    app.add_handler(press(Verb.rsvp, buttons.rsvp))
    app.add_handler(press(Verb.pick, buttons.pick))
    app.add_handler(press(Verb.page, buttons.page))
    app.add_handler(press(Verb.cancel, buttons.cancel))
    app.add_handler(press(Verb.dlg, buttons.dlg))
    app.add_handler(press(Verb.to, buttons.to))
    app.add_handler(press(Verb.stat, buttons.stat))
    app.add_handler(press(Verb.use, buttons.use))
    app.add_handler(CallbackQueryHandler(buttons.unknown))
    app.add_handler(
        MessageHandler(private & (filters.Document.ALL | filters.PHOTO), uploads.on_file)
    )
    app.add_handler(MessageHandler(private & filters.COMMAND, commands.unknown))
    app.add_handler(MessageHandler(private & filters.TEXT, text.on_text))
    app.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, uploads.on_other))
    app.add_error_handler(errors.on_error)
