"""`sopbot demo`: open the training room, print the page's address, and
keep it until interrupted; the room's folder goes with it unless kept."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.demo.autoplay import DEFAULT_PAUSE, TEST_DATA, Autoplay, Samples
from bot.demo.room import RoomRefused, TrainingRoom
from bot.demo.web import Page
from bot.demo.words import say


@dataclass
class OpenRoom:
    room: TrainingRoom
    autoplay: Autoplay
    page: Page
    address: str


@asynccontextmanager
async def open_room(
    *,
    port: int = 0,
    speed: float = 60.0,
    keep: Path | None = None,
    samples: Path | None = None,
    pause: float = DEFAULT_PAUSE,
) -> AsyncIterator[OpenRoom]:
    """The room, its autoplay and its page, served on 127.0.0.1:`port`."""
    room = TrainingRoom(speed=speed, keep=keep)
    try:
        await room.start()
        autoplay = Autoplay(room, Samples(samples or TEST_DATA), pause=pause)
        page = Page(room, autoplay)
        address = await page.listen(port)
        try:
            yield OpenRoom(room, autoplay, page, address)
        finally:
            await autoplay.stop()
            await page.close()
    finally:
        await room.stop()


async def _serve(port: int, speed: float, keep: Path | None, samples: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    async with open_room(port=port, speed=speed, keep=keep, samples=samples) as opened:
        print(say("siap", address=opened.address, speed=f"{speed:g}", keep=keep), flush=True)
        await stop.wait()
    print(say("ditutup"), flush=True)


def run_demo(port: int, speed: float, keep: Path | None, samples: Path | None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(_serve(port, speed, keep, samples))
    except RoomRefused as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # the port is taken (Linux, macOS, Windows)
            print(say("port_dipakai", port=port), file=sys.stderr)
            return 2
        raise
    return 0
