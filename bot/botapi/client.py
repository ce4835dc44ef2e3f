"""People on the built-in Bot API server (server.py): they send commands,
text, documents and photos, press buttons on messages they received, and
read their chat, as a Telegram app would for them. The tests act through
them, and so do the training room's page and its autoplay (bot/demo/)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.botapi.server import BotApiServer

_callback_ids = itertools.count(1)
_album_ids = itertools.count(1)


class NoButton(AssertionError):
    """The message shows no such button (any more): a test fails on it,
    the autoplay looks again at what the chat shows."""


@dataclass
class Person:
    server: BotApiServer
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None

    @property
    def user(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": "id",
        }
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}

    # ------------------------------------------------------------- sending

    async def _send(self, reply_to: dict[str, Any] | None = None, **content: Any) -> int:
        message = {
            "message_id": self.server.next_message_id(self.id),
            "date": int(self.server.now()),
            "chat": self.chat,
            "from": self.user,
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return await self.server.push_update({"message": message})

    async def send_text(self, text: str, reply_to: dict[str, Any] | None = None) -> int:
        return await self._send(reply_to, text=text)

    async def send_command(self, command: str, args: str = "") -> int:
        text = f"{command} {args}".strip()
        entity = {"type": "bot_command", "offset": 0, "length": len(command)}
        return await self._send(text=text, entities=[entity])

    async def send_document(
        self,
        data: bytes | Path,
        file_name: str,
        mime_type: str,
        *,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        declared_size: int | None = None,
        media_group_id: str | None = None,
        omit_size: bool = False,
    ) -> int:
        """`omit_size`: the update does not say the size (file_size is optional)."""
        blob = data.read_bytes() if isinstance(data, Path) else data  # noqa: ASYNC240
        info = self.server.store_file(
            blob, declared_size=declared_size, prefix="udoc", file_name=file_name
        )
        if omit_size:
            del info["file_size"]
        content: dict[str, Any] = {
            "document": {**info, "file_name": file_name, "mime_type": mime_type}
        }
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self._send(reply_to, **content)

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        """Telegram sends several sizes of a photo; the last, largest, is the
        original here, the smaller ones are other (shorter) bytes."""
        sizes = []
        for width, part in (
            (90, data[: max(1, len(data) // 16)]),
            (320, data[: max(1, len(data) // 4)]),
            (1280, data),
        ):
            info = self.server.store_file(part, prefix="uphoto")
            sizes.append({**info, "width": width, "height": width * 3 // 4})
        return sizes

    async def send_photo(
        self,
        data: bytes,
        *,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        media_group_id: str | None = None,
    ) -> int:
        content: dict[str, Any] = {"photo": self._photo_sizes(data)}
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self._send(reply_to, **content)

    async def send_album(self, photos: list[bytes]) -> list[int]:
        group = f"album{next(_album_ids)}"
        return [await self.send_photo(p, media_group_id=group) for p in photos]

    async def send_sticker(self) -> int:
        info = self.server.store_file(b"RIFFwebp", prefix="sticker")
        return await self._send(
            sticker={
                **info,
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            }
        )

    async def send_voice(self) -> int:
        info = self.server.store_file(b"OggS", prefix="voice")
        return await self._send(voice={**info, "duration": 3, "mime_type": "audio/ogg"})

    async def press(
        self, message: dict[str, Any], text: str | None = None, data: str | None = None
    ) -> str:
        """Press a button of a message this user received; returns the query id."""
        markup = message.get("reply_markup") or {}
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        for b in buttons:
            if (text is not None and text in b["text"]) or (
                data is not None and b.get("callback_data") == data
            ):
                return await self.press_data(message, b["callback_data"])
        raise NoButton(f"no button {text or data!r} in {[b['text'] for b in buttons]}")

    async def press_data(self, message: dict[str, Any], data: str) -> str:
        """Send callback data as a client would, whatever it is (forgery)."""
        query_id = f"cq{next(_callback_ids)}"
        await self.server.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.user,
                    "message": message,
                    "chat_instance": f"ci{self.id}",
                    "data": data,
                }
            }
        )
        return query_id

    # ------------------------------------------------------------- reading

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.server.messages(self.id)

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1]

    def texts(self) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.messages]

    def find(self, needle: str) -> list[dict[str, Any]]:
        """Messages whose text or caption contains `needle`, oldest first."""
        return [m for m in self.messages if needle in (m.get("text") or m.get("caption") or "")]

    def latest(self, needle: str) -> dict[str, Any]:
        found = self.find(needle)
        assert found, f"{self.first_name} has no message with {needle!r}: {self.texts()[-5:]}"
        return found[-1]

    def documents(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "document" in m or "photo" in m]

    def answer(self, query_id: str) -> dict[str, Any] | None:
        return self.server.callback_answers.get(query_id)
