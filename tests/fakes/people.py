"""People on the Bot API server moved into the product
(bot/botapi/client.py, the training room's too); the tests' name for them."""

from bot.botapi.client import Person

FakeUser = Person

__all__ = ["FakeUser"]
