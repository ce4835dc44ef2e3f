"""Wiring, like app.py: the Telegram pieces that handlers/ and jobs/ both
use, kept here so that jobs/ imports nothing from handlers/.

- `BotData` and `SopContext`: the Application's per-process state, typed,
  and the context every handler and job receives (python-telegram-bot's
  ContextTypes, as in its contexttypesbot example), so code says
  `context.services` instead of string keys in bot_data;
- `button` and `keyboard`: inline buttons from the domain's actions, the
  data encoded by the one verb table (bot/verbs.py);
- `send_pages`: the pages of an album, as Telegram albums;
- `command_menu` and `refresh_menu`: the command menu, per person by role.

Like app.py and cli.py, this module may import telegram; the domain may not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
)
from telegram.error import TelegramError
from telegram.ext import Application, CallbackContext, ExtBot
from telegram.request import BaseRequest

from bot.members import HelpProfile, MemberInfo
from bot.models import StoredFile
from bot.services import Services
from bot.texts import Texts
from bot.verbs import Verb, encode
from bot.views import TaskAction

if TYPE_CHECKING:  # jobs/ imports this module; only the types go the other way
    from jobs.deadlines import DeadlineJobs
    from jobs.outbox import OutboxSender

log = logging.getLogger(__name__)


class BotData:
    """What the Application keeps for the life of the process (its
    `bot_data`). python-telegram-bot makes it with no arguments when the
    Application is built; build_application then sets the services, and
    jobs.schedule_jobs the sender and the deadline timers (an Application
    built without jobs, as some tests do, has neither)."""

    def __init__(self) -> None:
        self._services: Services | None = None
        self.sender: OutboxSender | None = None
        self.deadline_jobs: DeadlineJobs | None = None
        # When each kind of error was last reported to the admins (handlers/errors.py).
        self.error_reports: dict[str, datetime] = {}
        # The bot's HTTP clients (bot/transport.py), closed by bot.app.stop
        # even when a start failed half way (python-telegram-bot closes
        # them only for a bot that started).
        self.transports: tuple[BaseRequest, ...] = ()

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("build_application sets the services before anything runs")
        return self._services

    @services.setter
    def services(self, services: Services) -> None:
        self._services = services


class SopContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """The context of every handler and job: the process's services at hand."""

    @property
    def services(self) -> Services:
        return self.bot_data.services

    @property
    def texts(self) -> Texts:
        return self.bot_data.services.texts


# The Application as build_application makes it (bot/app.py): what matters
# to its users is the typed bot_data.
SopApp: TypeAlias = Application[Any, Any, Any, Any, BotData, Any]


def button(
    t: Texts, verb: Verb, *ids: int, label: str | None = None, icon: str | None = None
) -> InlineKeyboardButton:
    """One button; its label from templates/button.html.j2 by the verb."""
    text = t.label(
        "button", verb=verb.value, label=label or "", icon=icon or "", yes=bool(ids and ids[-1])
    )
    return InlineKeyboardButton(text, callback_data=encode(verb, *ids))


def _action(a: TaskAction | Mapping[str, Any]) -> TaskAction:
    """An action as the domain hands it out, or as an outbox row keeps it
    (JSON: {verb, args, label, icon})."""
    if isinstance(a, TaskAction):
        return a
    return TaskAction(Verb(a["verb"]), tuple(a["args"]), a.get("label"), a.get("icon"))


def keyboard(
    t: Texts, actions: Iterable[TaskAction | Mapping[str, Any]] | None
) -> InlineKeyboardMarkup | None:
    """Buttons from the domain's actions, two a row; None without any."""
    buttons = [
        button(t, a.verb, *a.args, label=a.label, icon=a.icon)
        for a in (_action(x) for x in actions or [])
    ]
    if not buttons:
        return None
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(rows)


async def send_pages(bot: Bot, chat_id: int, svc: Services, pages: list[StoredFile]) -> None:
    """Every page of an album, as Telegram albums: ten at most each, photos
    and documents apart (Telegram does not mix them); a lone page alone."""
    for kind in ("photo", "document"):
        group = [f for f in pages if (f.kind == "photo") == (kind == "photo")]
        for i in range(0, len(group), 10):
            chunk = group[i : i + 10]
            sources = [f.telegram_file_id or svc.storage.read(f.storage_path) for f in chunk]
            if len(chunk) == 1:
                if kind == "photo":
                    await bot.send_photo(chat_id, sources[0])
                else:
                    await bot.send_document(chat_id, sources[0], filename=chunk[0].original_name)
                continue
            media: Sequence[InputMediaPhoto | InputMediaDocument] = [
                InputMediaPhoto(src)
                if kind == "photo"
                else InputMediaDocument(src, filename=f.original_name)
                for f, src in zip(chunk, sources, strict=True)
            ]
            await bot.send_media_group(chat_id, media)


def command_menu(services: Services, profile: HelpProfile | None = None) -> list[BotCommand]:
    """A menu from templates/commands.txt.j2, the one list of who sees which
    command: by what a member's roles let them do (`profile`, the one
    /bantuan words), or, without one, the menu of someone not enrolled (the
    bot's default, which a revoked member falls back to)."""
    text = services.texts.env.get_template("commands.txt.j2").render(profile=profile)
    menu = []
    for line in text.splitlines():
        name, sep, description = line.partition(" — ")
        if sep:
            menu.append(BotCommand(name.strip(), description.strip()))
    return menu


async def refresh_menu(bot: Bot, services: Services, member: MemberInfo) -> None:
    """Set a member's own menu (the scope of their private chat) for their
    roles now; a revoked member's is deleted, so the default applies again.
    A menu is not worth a failed command: a refusal is logged only."""
    scope = BotCommandScopeChat(member.telegram_id)
    try:
        if member.active:
            profile = await services.members.help_profile(member.id, services.office.report_roles)
            await bot.set_my_commands(command_menu(services, profile), scope=scope)
        else:
            await bot.delete_my_commands(scope=scope)
    except TelegramError as exc:
        log.warning("command menu of member %s not set: %s", member.id, exc)
