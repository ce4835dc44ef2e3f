"""The Bot API server built into the product (server.py) and the people who
use it (client.py): the tests' Telegram and the training room's."""

from bot.botapi.client import Person
from bot.botapi.server import ApiError, BotApiServer, parse_entities, parse_html

__all__ = ["ApiError", "BotApiServer", "Person", "parse_entities", "parse_html"]
