"""The handlers' two tables: a button handler per verb, registered with the
verb's pattern before the catch-all; an answer per kind of question."""

from __future__ import annotations

import re

from telegram.ext import ApplicationBuilder, CallbackQueryHandler, ContextTypes

from bot.chat import BotData, SopContext
from bot.pending import QUESTIONS, Outdated
from bot.verbs import VERBS, Verb, encode, pattern
from handlers import buttons, register
from handlers.text import ANSWERS


def callback_handlers() -> list[CallbackQueryHandler[SopContext, None]]:
    app = (
        ApplicationBuilder()
        .token("123:abc")
        .context_types(ContextTypes(context=SopContext, bot_data=BotData))
        .build()
    )
    register(app)
    return [h for h in app.handlers[0] if isinstance(h, CallbackQueryHandler)]


def test_every_verb_has_its_handler_and_the_rest_one_answer() -> None:
    *per_verb, last = callback_handlers()
    patterns = [h.pattern for h in per_verb]
    assert patterns == [pattern(v) for v in Verb]  # each verb once, in the table's order
    assert last.pattern is None and last.callback is buttons.unknown
    for verb, handler in zip(Verb, per_verb, strict=True):
        # Each verb's data is matched by its own handler and no other.
        data = encode(verb, *range(1, VERBS[verb].required + 1))
        matching = [
            h for h in per_verb if isinstance(h.pattern, re.Pattern) and h.pattern.match(data)
        ]
        assert matching == [handler], data
        assert handler.callback.__name__ == f"on_{verb.value}"


def test_every_kind_of_question_has_its_answer() -> None:
    assert set(ANSWERS) == {*QUESTIONS.values(), Outdated}
