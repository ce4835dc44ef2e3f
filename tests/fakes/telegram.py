"""The Bot API server moved into the product (bot/botapi/server.py, the
training room's too); this name stays for tests written against it."""

from bot.botapi.server import ApiError, BotApiServer, parse_html

FakeBotApi = BotApiServer

__all__ = ["ApiError", "FakeBotApi", "parse_html"]
