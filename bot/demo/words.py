"""The training room's words: every text it shows or types is a macro of
templates/demo/kata.txt.j2, called here by name (plain text: the page puts
it in as text, the command line prints it)."""

from __future__ import annotations

from functools import cache
from typing import Any

from markupsafe import Markup

from bot.texts import Texts

TEMPLATE = "demo/kata.txt.j2"


@cache
def _macros() -> Any:
    return Texts().env.get_template(TEMPLATE).module


def say(name: str, /, **context: object) -> str:
    """The text of macro `name`, e.g. say("kecepatan", max=3600)."""
    macro = getattr(_macros(), name)
    return str(Markup(macro(**context)).unescape()).strip()
