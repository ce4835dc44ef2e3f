"""The training room's page: a chat app in the browser, served on
127.0.0.1 by aiohttp (plain HTML, CSS and JavaScript from static/, nothing
from the internet). The page shows each person's chat with the bot as
Telegram shows it and acts as that person through the built-in Bot API
server (`Person`): text and commands, a reply, a press, a document or
photos from the computer. Changes reach the page as server-sent events.

Messages are handed to the page as Telegram has them (text and entities,
the document, the photo sizes, the inline keyboard); the page draws them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bot.botapi import Person
from bot.demo.autoplay import Autoplay
from bot.demo.cast import Actor
from bot.demo.room import MAX_SPEED, RoomRefused, TrainingRoom
from bot.demo.words import say

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 50 * 1024 * 1024  # what Telegram takes from a person
SPEEDS = [1, 10, 60, 300, 1200, 3600]
TICK = 1.0  # seconds between the clock's updates on the page


class Page:
    """The routes of the page; `listen` serves them."""

    def __init__(self, room: TrainingRoom, autoplay: Autoplay) -> None:
        self.room = room
        self.autoplay = autoplay
        self._read: dict[int, int] = {}  # person -> last bot message id they saw
        self._streams: set[asyncio.Queue[dict[str, Any]]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        room.server.listeners.append(self._on_chat)
        autoplay.on_change = lambda: self._publish({"kind": "state"})

    # ------------------------------------------------------------ lifecycle

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/static/{name}", self.static)
        r.add_get("/api/state", self.state)
        r.add_get("/api/events", self.events)
        r.add_get("/api/chats/{id}", self.chat)
        r.add_post("/api/chats/{id}/read", self.read)
        r.add_post("/api/chats/{id}/text", self.text)
        r.add_post("/api/chats/{id}/press", self.press)
        r.add_post("/api/chats/{id}/upload", self.upload)
        r.add_post("/api/chats/{id}/takeover", self.takeover)
        r.add_get("/api/files/{file_id}/{name}", self.file)
        r.add_post("/api/speed", self.speed)
        r.add_post("/api/autoplay", self.play)
        return app

    async def listen(self, port: int) -> str:
        """Serve on 127.0.0.1 (port 0: any free one); returns the address."""
        self._runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._ticker = asyncio.create_task(self._tick())
        return f"http://127.0.0.1:{self.port}/"

    async def close(self) -> None:
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        for queue in self._streams:
            queue.put_nowait({"kind": "end"})
        if self._runner is not None:
            await self._runner.cleanup()

    # --------------------------------------------------------------- events

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in self._streams:
            queue.put_nowait(event)

    def _on_chat(self, chat_id: int, event: dict[str, Any]) -> None:
        self._publish({**event, "chat": chat_id})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._publish({"kind": "clock", "clock": self._clock()})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a chat changed, the state changed, the clock."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._streams.add(queue)
        try:
            await response.write(b"retry: 1000\n\n")
            while True:
                event = await queue.get()
                if event.get("kind") == "end":
                    break
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        return response

    # ---------------------------------------------------------------- views

    def _clock(self) -> str:
        return self.room.services.texts.local_time(self.room.clock.now())

    def _unread(self, actor: Actor) -> int:
        seen = self._read.get(actor.id, 0)
        return sum(1 for m in actor.person.messages if m["message_id"] > seen)

    async def index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def state(self, _request: web.Request) -> web.Response:
        play = self.autoplay
        why = play.samples.missing()
        return web.json_response(
            {
                "people": [
                    {
                        "id": a.id,
                        "name": a.name,
                        "role": a.role_label,
                        "unit": a.unit,
                        "unread": self._unread(a),
                        "manual": a.id in play.manual,
                        "last": _snippet(a.person.messages[-1]) if a.person.messages else "",
                    }
                    for a in self.room.actors
                ],
                "clock": self._clock(),
                "speed": self.room.clock.factor,
                "speeds": SPEEDS,
                "bot": self.room.server.username,
                "autoplay": {
                    "state": play.state,
                    "status": play.status,
                    "available": why is None,
                    "why": why or "",
                },
            }
        )

    def _actor(self, request: web.Request) -> Actor:
        try:
            return self.room.actor(int(request.match_info["id"]))
        except (KeyError, ValueError):
            raise web.HTTPNotFound(text=say("orang_tidak_ada")) from None

    async def chat(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        server = self.room.server
        mine = server.sent_by_people.get(actor.id, {})
        bots = server.chats.get(actor.id, {})
        merged = sorted([*mine.values(), *bots.values()], key=lambda m: m["message_id"])
        return web.json_response(
            {
                "id": actor.id,
                "name": actor.name,
                "role": actor.role_label,
                "unit": actor.unit,
                "manual": actor.id in self.autoplay.manual,
                "commands": server.menu_entries(actor.id),
                "messages": [_message_view(m, m["message_id"] in mine) for m in merged],
            }
        )

    async def read(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        messages = actor.person.messages
        self._read[actor.id] = messages[-1]["message_id"] if messages else 0
        self._publish({"kind": "state"})
        return web.json_response({"ok": True})

    # --------------------------------------------------------------- acting

    async def _act(
        self, actor: Actor, action: Callable[[Person], Awaitable[object]]
    ) -> web.Response:
        """The trainer acts as this person; while the autoplay plays, that
        takes the person over (the autoplay leaves them to the trainer)."""
        if self.autoplay.state in ("playing", "paused") and actor.id not in self.autoplay.manual:
            self.autoplay.take_over(actor.id)
        await action(actor.person)
        return web.json_response({"ok": True})

    def _message(self, actor: Actor, message_id: object) -> dict[str, Any] | None:
        if message_id in (None, "", 0):
            return None
        server = self.room.server
        try:
            key = int(str(message_id))
        except ValueError:
            raise web.HTTPBadRequest(text=say("pesan_tidak_dikenal")) from None
        message = server.chats.get(actor.id, {}).get(key) or server.sent_by_people.get(
            actor.id, {}
        ).get(key)
        if message is None:
            raise web.HTTPBadRequest(text=say("pesan_tidak_ada"))
        return message

    async def text(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        body = await _json(request)
        text = str(body.get("text") or "").strip()
        if not text:
            raise web.HTTPBadRequest(text=say("tulis_dulu"))
        if len(text) > 4096:
            raise web.HTTPBadRequest(text=say("terlalu_panjang", limit=4096))
        reply_to = self._message(actor, body.get("reply_to"))
        if text.startswith("/") and reply_to is None:
            command, _, args = text.partition(" ")
            return await self._act(actor, lambda p: p.send_command(command, args.strip()))
        return await self._act(actor, lambda p: p.send_text(text, reply_to=reply_to))

    async def press(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        body = await _json(request)
        message = self._message(actor, body.get("message_id"))
        data = str(body.get("data") or "")
        if message is None or not data:
            raise web.HTTPBadRequest(text=say("tombol_tidak_dikenal"))
        return await self._act(actor, lambda p: p.press_data(message, data))

    async def upload(self, request: web.Request) -> web.Response:
        """Files from the computer: photos as a photo (several: an album),
        anything else as a document, each as Telegram would deliver it."""
        actor = self._actor(request)
        files: list[tuple[str, str, bytes]] = []
        fields: dict[str, str] = {}
        if not request.content_type.startswith("multipart/"):
            raise web.HTTPBadRequest(text=say("pilih_berkas"))
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename:
                data = await part.read()
                kind = part.headers.get("Content-Type") or ""
                if not kind or kind == "application/octet-stream":
                    kind = mimetypes.guess_type(part.filename)[0] or "application/octet-stream"
                files.append((part.filename, kind, bytes(data)))
            else:
                fields[part.name] = (await part.read()).decode()
        if not files:
            raise web.HTTPBadRequest(text=say("pilih_berkas"))
        if len(files) > 10:
            raise web.HTTPBadRequest(text=say("terlalu_banyak", limit=10))
        if any(len(data) > MAX_UPLOAD for _, _, data in files):
            raise web.HTTPBadRequest(text=say("terlalu_besar", mb=MAX_UPLOAD // 2**20))
        reply_to = self._message(actor, fields.get("reply_to"))
        caption = fields.get("caption") or None
        photos = [f for f in files if f[1] in ("image/jpeg", "image/png")]

        async def send(p: Person) -> None:
            if len(photos) == len(files) and len(photos) > 1:
                await p.send_album([data for _, _, data in photos])
            elif len(photos) == len(files):
                await p.send_photo(photos[0][2], caption=caption, reply_to=reply_to)
            else:
                for name, kind, data in files:
                    await p.send_document(data, name, kind, caption=caption, reply_to=reply_to)

        return await self._act(actor, send)

    async def takeover(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        body = await _json(request)
        if body.get("on"):
            self.autoplay.take_over(actor.id)
        else:
            self.autoplay.hand_back(actor.id)
        return web.json_response({"ok": True})

    async def file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if not self.room.server.has_file(file_id):
            raise web.HTTPNotFound(text=say("berkas_tidak_ada"))
        name = request.match_info["name"]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        inline = kind.startswith("image/")
        disposition = "inline" if inline else "attachment"
        return web.Response(
            body=self.room.server.file_bytes(file_id),
            content_type=kind,
            headers={"Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}"},
        )

    async def speed(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            factor = float(body.get("factor") or 0)
            self.room.set_speed(factor)
        except (TypeError, ValueError, RoomRefused):
            raise web.HTTPBadRequest(text=say("kecepatan", max=int(MAX_SPEED))) from None
        self._publish({"kind": "state"})
        return web.json_response({"ok": True, "speed": factor})

    async def play(self, request: web.Request) -> web.Response:
        body = await _json(request)
        action = body.get("action")
        play = self.autoplay
        if action == "start":
            play.start()
        elif action == "pause":
            play.pause_play()
        elif action == "resume":
            play.resume()
        else:
            raise web.HTTPBadRequest(text=say("perintah_tidak_dikenal"))
        return web.json_response({"ok": True, "state": play.state})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=say("tidak_sah")) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=say("tidak_sah"))
    return body


def _snippet(message: dict[str, Any]) -> str:
    text = message.get("text") or message.get("caption") or ""
    if not text and "document" in message:
        text = "📄 " + str(message["document"].get("file_name") or "berkas")
    elif not text and "photo" in message:
        text = "🖼 Foto"
    first = str(text).strip().split("\n", 1)[0]
    return first[:80]


def _file_url(file_id: str, name: str) -> str:
    return f"/api/files/{quote(file_id)}/{quote(name)}"


def _message_view(message: dict[str, Any], mine: bool) -> dict[str, Any]:
    """A message as the page draws it: Telegram's own fields, with download
    addresses for its files and the message it answers in short."""
    view: dict[str, Any] = {
        "id": message["message_id"],
        "mine": mine,
        "date": message.get("date"),
        "edited": "edit_date" in message,
        "text": message.get("text"),
        "entities": message.get("entities") or [],
        "caption": message.get("caption"),
        "caption_entities": message.get("caption_entities") or [],
        "album": message.get("media_group_id"),
        "keyboard": (message.get("reply_markup") or {}).get("inline_keyboard") or [],
    }
    document = message.get("document")
    if document:
        name = str(document.get("file_name") or "berkas")
        view["document"] = {
            "name": name,
            "size": document.get("file_size"),
            "url": _file_url(str(document["file_id"]), name),
        }
    photo = message.get("photo")
    if photo:
        largest = photo[-1]
        view["photo"] = {"url": _file_url(str(largest["file_id"]), "foto.jpg")}
    reply = message.get("reply_to_message")
    if reply:
        view["reply_to"] = {"id": reply.get("message_id"), "text": _snippet(reply)}
    return view
