"""The bot's requests over aiohttp (bot/transport.py) say what httpx said:
the same parameters, files under their own names, a timeout as TimedOut and
an unreachable server as NetworkError (which the outbox retries)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from bot.botapi import BotApiServer as FakeBotApi
from bot.botapi import Person as FakeUser
from bot.transport import AiohttpRequest, proxy_for


def closed_port() -> int:
    """A port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_for(server: FakeBotApi) -> Bot:
    return Bot(
        server.token,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        request=AiohttpRequest(pool=4),
        get_updates_request=AiohttpRequest(pool=1),
    )


async def test_parameters_files_and_downloads_arrive_as_sent() -> None:
    async with FakeBotApi() as server:
        rina = FakeUser(server, 3001, "Rina")
        async with bot_for(server) as bot:
            keyboard = InlineKeyboardMarkup(
                [[InlineKeyboardButton("Selesai", callback_data="d:1")]]
            )
            await bot.send_message(
                rina.id, "<b>Langkah 2</b> &amp; catatan", parse_mode="HTML", reply_markup=keyboard
            )
            name = 'Rekap "TW III" – Bakesbangpol, 100%.xlsx'
            data = bytes(range(256)) * 40
            await bot.send_document(rina.id, data, filename=name)
            sent = rina.documents()[-1]["document"]
            downloaded = await (await bot.get_file(sent["file_id"])).download_as_bytearray()
        text = rina.find("Langkah 2")[-1]
        assert text["text"] == "Langkah 2 & catatan"
        assert text["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "d:1"
        assert sent["file_name"] == name  # not percent-encoded
        assert bytes(downloaded) == data


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server that takes the request and does not answer until released."""
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/{path:.*}", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/bot", release
    finally:
        release.set()
        await runner.cleanup()


async def test_no_answer_in_time_is_timed_out(silent_server: tuple[str, asyncio.Event]) -> None:
    url, _release = silent_server
    request = AiohttpRequest(pool=1)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{url}1:x/getMe", read_timeout=0.05)
    finally:
        await request.shutdown()


async def test_an_unreachable_server_is_a_network_error() -> None:
    port = closed_port()
    request = AiohttpRequest(pool=1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as info:
            await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
        assert not isinstance(info.value, TimedOut)
    finally:
        await request.shutdown()


async def test_a_proxy_named_by_the_environment_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An office behind a proxy sets HTTPS_PROXY (HTTP_PROXY here, the
    proxy being plain HTTP on this machine), as it did for httpx."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    proxy_for.cache_clear()
    request = AiohttpRequest(pool=1)
    await request.initialize()
    try:
        assert await request.post("http://api.telegram.invalid/bot1:x/getMe") is True
        assert seen == ["http://api.telegram.invalid/bot1:x/getMe"]
        # NO_PROXY: straight to the host, where nobody listens
        with pytest.raises(NetworkError):
            await request.post(f"http://localhost:{closed_port()}/bot1:x/getMe")
        assert len(seen) == 1
    finally:
        await request.shutdown()
        await runner.cleanup()
        proxy_for.cache_clear()


async def test_a_slow_download_that_keeps_coming_is_not_cut_off() -> None:
    """A unit's 20 MB workbook on a slow line takes longer than all the
    timeouts together; each piece comes within the read timeout, so the
    download goes on (as with httpx), where a silent server times out."""
    pieces = [bytes([n]) * 1000 for n in range(9)]

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.1)  # noqa: ASYNC120 (a slow line, in real time)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/file", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    request = AiohttpRequest(pool=1)
    await request.initialize()
    try:
        got = await request.retrieve(
            f"http://127.0.0.1:{port}/file",
            read_timeout=0.3,
            write_timeout=0.1,
            connect_timeout=0.1,
            pool_timeout=0.1,
        )  # 0.9 s in all, against 0.6 s of timeouts summed
        assert got == b"".join(pieces)
    finally:
        await request.shutdown()
        await runner.cleanup()
