"""The benchmark of issue 10: one command, one table of every figure.

    .venv/bin/python -m bench [--quick] [--database-url postgresql+asyncpg://.../scratch]
    scripts/bench [--quick] [...]

What it measures, each figure as min / median / max over repetitions:

- updates per second, the real Application (`bench/proc.py sopbot`, built by
  bot.app.build_application, AIORateLimiter off: the CPU path) and a bare
  python-telegram-bot bot (one handler that replies), each a process of its
  own polling its own instance of the fake Bot API server (bot/botapi/),
  alternating in the same run, with a mix of `/tugas`, `/status`, a press of
  a step's button (Unggah berkas) and a note typed as a reply to a task, 3
  open runs; and the ratio of the two; beside them a third process, the bare
  bot answering as sopbot answers (`bench/proc.py shaped`: the same
  requests for each kind of update, through the bot's own transport, no
  database and no rules), the most sopbot could do with these messages,
  and the CPU per update of each of the three under that load;
- the time per update inside `process_update` (p50, p99), as the bot
  process measured it, under that load (two people's chats, everything
  pushed at once: an update also waits for the other chat's on the one
  event loop) and for each kind alone, one at a time (what a person waits
  with nobody else about), with the CPU the process spends per update of
  each kind;
- SQL statements per update type, with 3 and with 12 open runs
  (tests/fakes/statements.py; the update-id bookkeeping counted apart);
- the deadline sweep with nothing due, with 25 steps due, the due-step
  query and the next timer moment, at 15k and 150k open assignments (runs
  built through the engine, then copied in bulk with INSERT ... SELECT);
- a queue delivered under Telegram's flood limit: the real bot process
  with its AIORateLimiter, as in production, against a fake server that
  refuses, as Telegram does, more than 30 messages in any second (429 with
  retry_after); 428 outbox rows owed at once, left by the engine before the
  bot starts (2 runs each sending the form to 100 unit members and inviting
  everyone to the meeting); messages a second from the first delivered to
  the last, its ratio to 30/s (issue 10 asks 0.9 or more) and the 429s;
- the garbage collector's full collections in the sopbot process over the
  whole throughput part: the longest (every update in flight waits for
  it) and their total;
- the start time of `sopbot run` to its first getUpdates;
- resident memory of the bot process idle and after 10,000 updates.

It asserts nothing; tests never time anything. Given a PostgreSQL URL it
wants an empty scratch database (it refuses one with tables) and wipes it
between its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.scale import ScaleFigures, measure_scale, wipe
from bot.botapi import BotApiServer as FakeBotApi
from bot.botapi import Person as FakeUser
from bot.db import Database
from bot.migrate import upgrade
from tests.fakes.world import ROOT, spawn_bot

Figure = tuple[float, float, float]  # min, median, max


def spread(values: list[float]) -> Figure:
    return min(values), statistics.median(values), max(values)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used (user + system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def refuse_used(url: str) -> None:
    from sqlalchemy import inspect

    db = Database(url)
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    await db.dispose()
    if tables:
        raise SystemExit(
            f"{url.split('@')[-1]} has tables ({len(tables)}): give the benchmark "
            "an empty scratch database, never the bot's own."
        )


# ------------------------------------------------------------------ processes


class BotProcess:
    """A bot polling its own fake server, in a process of its own."""

    def __init__(self, kind: str, server: FakeBotApi, tmp: Path, env: dict[str, str]) -> None:
        self.kind, self.server, self.tmp, self.env = kind, server, tmp, env
        self.times_file = tmp / f"{kind}-times.json"
        self.gc_file = tmp / f"{kind}-gc.txt"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Spawn; seconds until its first getUpdates."""
        variables = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": self.server.token,
            "BOT_API_BASE_URL": self.server.base_url,
            "BOT_API_FILE_URL": self.server.base_file_url,
            "DATA_DIR": str(self.tmp / "data"),
            "LOG_LEVEL": "WARNING",
            "BENCH_TIMES": str(self.times_file),
            "BENCH_GC": str(self.gc_file),
            "BENCH_LIMITER": "off",
            # `BENCH_PROFILE=DIR python -m bench`: each bot writes DIR/<kind>.prof
            **{k: v for k, v in os.environ.items() if k == "BENCH_PROFILE"},
            **self.env,
        }
        t0 = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.proc",
            self.kind,
            cwd=self.tmp,
            env=variables,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=(self.tmp / f"{self.kind}.log").open("wb"),  # noqa: ASYNC230, SIM115
        )
        try:
            await until(lambda: bool(self.server.calls("getUpdates")), 60)
        except TimeoutError:
            log = (self.tmp / f"{self.kind}.log").read_text()[-3000:]
            raise SystemExit(f"{self.kind} did not start:\n{log}") from None
        return time.perf_counter() - t0

    def times(self) -> list[float]:
        """Each handled update's time in process_update, in the order finished."""
        try:
            return [float(x) for x in self.times_file.read_text().split()]
        except FileNotFoundError:
            return []

    def collector(self) -> tuple[float, float, int]:
        """After stop: the longest full collection, their total (seconds)
        and how many there were."""
        longest, total, count = self.gc_file.read_text().split()
        return float(longest), float(total), int(count)

    def handled(self) -> int:
        """Updates the process has finished handling (a line each in its times)."""
        try:
            return self.times_file.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    async def settle(self, count: int, limit: float = 600) -> float:
        """Until `count` updates in all are handled; the moment it was seen."""
        await until(lambda: self.handled() >= count, limit)
        return time.perf_counter()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> list[float]:
        """SIGINT (PTB stops cleanly); the times it measured."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.times_file.exists():
            return [float(x) for x in self.times_file.read_text().split()]
        return []


async def until(check: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the bot process did not get there")
        await asyncio.sleep(0.01)


async def drain(server: FakeBotApi, pushed_at: float, quiet: float = 0.3) -> float:
    """Seconds from `pushed_at` to the bot's last answer, once every pushed
    update was fetched and the bot is quiet (getUpdates, the long poll, is
    no answer)."""
    seen = len(server.requests)
    last = pushed_at

    async def watch() -> None:
        nonlocal seen, last
        while True:
            await asyncio.sleep(0.002)
            requests = server.requests
            if len(requests) > seen:
                if any(r.method != "getUpdates" for r in requests[seen:]):
                    last = time.perf_counter()
                seen = len(requests)

    watcher = asyncio.create_task(watch())
    try:
        await server.wait_idle(quiet=quiet, limit=600)
    finally:
        watcher.cancel()
    return last - pushed_at


Send = Callable[[], Awaitable[Any]]


def with_buttons(person: FakeUser, needle: str) -> dict[str, Any]:
    return next(
        m
        for m in reversed(person.find(needle))
        if (m.get("reply_markup") or {}).get("inline_keyboard")
    )


# ------------------------------------------------------------------ throughput


async def prepare_office(server: FakeBotApi, tmp: Path, url: str, runs: int) -> dict[str, int]:
    """People and open runs, written through the engine before the bot starts."""
    from bot.services import Services
    from bot.settings import Settings
    from tests.support import enrol

    settings = Settings(
        _env_file=None,
        bot_token=server.token,
        data_dir=tmp / "data",
        database_url=url,
    )
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    services = Services.build(settings)
    await services.members.sync_units(services.office.units)
    ids = {
        "kepala": (await enrol(services.members, 1001, "Kepala", "kepala_badan")).id,
        "sekretaris": (await enrol(services.members, 1002, "Sekretaris", "sekretaris")).id,
        "rina": (await enrol(services.members, 1003, "Rina", "perencana")).id,
        "dodi": (await enrol(services.members, 1004, "Dodi", "perencana")).id,
    }
    for n in range(runs):
        await services.engine.runs.start(ids["kepala"], f"Kegiatan {n + 1}")
    await services.close()
    return ids


def sop_kinds(rina: FakeUser, dodi: FakeUser) -> dict[str, Send]:
    note_to = with_buttons(rina, "Langkah 2")
    press_on = with_buttons(dodi, "Langkah 2")
    return {
        "/tugas": lambda: rina.send_command("/tugas"),
        "/status": lambda: rina.send_command("/status"),
        "note": lambda: rina.send_text("Sudah dicek", note_to),
        "press": lambda: dodi.press(press_on, "Unggah berkas"),
    }


def sop_mix(rina: FakeUser, dodi: FakeUser) -> list[Send]:
    return list(sop_kinds(rina, dodi).values())


async def one_at_a_time(bot: BotProcess, kinds: dict[str, Send], count: int) -> dict[str, Any]:
    """Each kind of update `count` times, each pushed once the one before is
    handled: the time a person waits with nobody else about, and the CPU
    the process spends per update of that kind (all its threads, the
    outbox's sends included, measured over the whole series)."""
    out: dict[str, Any] = {}
    for name, send in kinds.items():
        first = bot.handled()
        cpu0 = cpu_seconds(bot.pid)
        for i in range(count):
            await send()
            await bot.settle(first + i + 1)
        await drain(bot.server, time.perf_counter())  # what it queued is sent too
        cpu = (cpu_seconds(bot.pid) - cpu0) / count
        times = bot.times()[first : first + count]
        out[name] = (percentile(times, 50), percentile(times, 99), cpu)
    return out


def bare_mix(person: FakeUser) -> list[Send]:
    message = {"message_id": 1, "date": 0, "chat": person.chat, "text": "x"}
    return [
        lambda: person.send_command("/tugas"),
        lambda: person.send_command("/status"),
        lambda: person.send_text("Sudah dicek"),
        lambda: person.press_data(message, "x"),
    ]


async def push(mix: list[Send], count: int) -> None:
    for i in range(count):
        await mix[i % len(mix)]()


async def rate(bot: BotProcess, mix: list[Send], count: int) -> float:
    """Updates per second: `count` pushed at once, until the bot process has
    handled the last of them (its own count, so nothing is missed)."""
    return (await rate_and_cpu(bot, mix, count))[0]


async def rate_and_cpu(bot: BotProcess, mix: list[Send], count: int) -> tuple[float, float]:
    """`rate`, and the CPU seconds the process spent per update meanwhile."""
    before = bot.handled()
    cpu0 = cpu_seconds(bot.pid)
    t0 = time.perf_counter()
    await push(mix, count)
    seconds = await bot.settle(before + count) - t0
    return count / seconds, (cpu_seconds(bot.pid) - cpu0) / count


async def throughput(
    tmp: Path, url: str | None, rounds: int, batch: int, total: int, alone: int
) -> dict[str, Any]:
    await wipe(url)
    out: dict[str, Any] = {}
    async with (
        FakeBotApi() as sop_server,
        FakeBotApi() as bare_server,
        FakeBotApi() as shaped_server,
    ):
        database = url or f"sqlite+aiosqlite:///{tmp / 'throughput.db'}"
        await prepare_office(sop_server, tmp, database, runs=3)
        sop = BotProcess("sopbot", sop_server, tmp, {"DATABASE_URL": database})
        bare = BotProcess("bare", bare_server, tmp, {})
        shaped = BotProcess("shaped", shaped_server, tmp, {})
        await sop.start()
        await bare.start()
        await shaped.start()
        rina = FakeUser(sop_server, 1003, "Rina")
        dodi = FakeUser(sop_server, 1004, "Dodi")
        await until(
            lambda: len(rina.find("Langkah 2")) >= 3 and len(dodi.find("Langkah 2")) >= 3, 60
        )
        await drain(sop_server, time.perf_counter())
        out["rss_idle"] = rss_mib(sop.pid)
        out["alone"] = await one_at_a_time(sop, sop_kinds(rina, dodi), alone)
        loaded_from = sop.handled()
        mix = sop_mix(rina, dodi)
        other = bare_mix(FakeUser(bare_server, 1003, "Rina"))
        # The same kinds of update as the bare bot's, answered as sopbot answers.
        alike = bare_mix(FakeUser(shaped_server, 1003, "Rina"))
        await rate(sop, mix, len(mix) * 5)  # warm them up
        await rate(bare, other, len(other) * 5)
        await rate(shaped, alike, len(alike) * 5)
        sop_rates, bare_rates, ratios, shaped_rates, shaped_ratios = [], [], [], [], []
        cpu: dict[str, list[float]] = {"sopbot": [], "shaped": [], "bare": []}
        for _ in range(rounds):
            s, cpu_s = await rate_and_cpu(sop, mix, batch)
            b, cpu_b = await rate_and_cpu(bare, other, batch)
            h, cpu_h = await rate_and_cpu(shaped, alike, batch)
            sop_rates.append(s)
            bare_rates.append(b)
            ratios.append(s / b)
            shaped_rates.append(h)
            shaped_ratios.append(h / b)
            cpu["sopbot"].append(cpu_s)
            cpu["bare"].append(cpu_b)
            cpu["shaped"].append(cpu_h)
        handled = len(mix) * 5 + rounds * batch + len(out["alone"]) * alone
        while handled < total:  # on to 10,000 updates, for the memory after
            step = min(1000, total - handled)
            await push(mix, step)
            await sop.settle(handled + step)
            handled += step
        out["updates"] = handled
        out["rss_after"] = rss_mib(sop.pid)
        out["sop_rate"], out["bare_rate"], out["ratio"] = (
            spread(sop_rates),
            spread(bare_rates),
            spread(ratios),
        )
        out["shaped_rate"], out["shaped_ratio"] = spread(shaped_rates), spread(shaped_ratios)
        out["cpu"] = {kind: statistics.median(values) for kind, values in cpu.items()}
        times = (await sop.stop())[loaded_from:]
        out["gc"] = sop.collector()
        bare_times = await bare.stop()
        await shaped.stop()
        out["p50"], out["p99"] = percentile(times, 50), percentile(times, 99)
        out["bare_p50"] = percentile(bare_times, 50) if bare_times else float("nan")
        out["handled_times"] = len(times)
    return out


# ------------------------------------------------------------------ delivery

FLOOD_LIMIT = 30  # Telegram's messages a second, bot-wide (the fake server's limit)


async def owe_a_queue(server: FakeBotApi, tmp: Path, url: str, members: int, runs: int) -> int:
    """A queue of messages owed at once, as a real fan-out leaves it, written
    through the engine before the bot starts: `members` unit members
    enrolled, then `runs` runs each taken to the form sent to every unit
    member (step 3: a document each, the form the planner sent through
    Telegram, so it goes by file_id) and the meeting they are all invited
    to (step 4: a message with buttons each). The outbox rows owed."""
    from sqlmodel import func, select

    from bot.models import Notification, RunStep, StepState
    from bot.services import Services
    from bot.settings import Settings
    from bot.views import IncomingFile
    from tests.support import FORM, XLSX, enrol

    settings = Settings(
        _env_file=None, bot_token=server.token, data_dir=tmp / "data", database_url=url
    )
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    services = Services.build(settings)
    engine, calendar = services.engine, services.calendar
    units = services.office.units
    await services.members.sync_units(units)
    kepala = await enrol(services.members, 1001, "Kepala", "kepala_badan")
    sekretaris = await enrol(services.members, 1002, "Sekretaris", "sekretaris")
    rina = await enrol(services.members, 1003, "Rina", "perencana")
    await enrol(services.members, 1004, "Dodi", "perencana")
    for n in range(members):
        await enrol(
            services.members, 3000 + n, f"Staf {n + 1}", "anggota_tim", units[n % len(units)]
        )
    form = server.store_file(FORM.read_bytes(), file_name=FORM.name)
    sent_form = IncomingFile(FORM.read_bytes(), FORM.name, XLSX, telegram_file_id=form["file_id"])
    meeting_at = calendar.next_opening(calendar.next_working_day(services.clock.now()))

    async def open_step(run_id: int) -> int:
        async with services.db.session() as s:
            step = await s.exec(
                select(RunStep.id).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
            return int(step.one() or 0)

    for n in range(runs):
        run = await engine.runs.start(kepala.id, f"Kegiatan {n + 1}")
        step = await open_step(run.id or 0)  # 2: the planner makes the form
        await engine.collection.upload(rina.id, step, sent_form)
        await engine.steps.complete(rina.id, step)
        await engine.steps.complete(rina.id, await open_step(run.id or 0))  # 3: to every unit
        await engine.steps.schedule_meeting(  # 4: everyone invited
            sekretaris.id, await open_step(run.id or 0), meeting_at + timedelta(hours=1), "Aula"
        )
    async with services.db.session() as s:
        owed = (await s.exec(select(func.count()).select_from(Notification))).one()
    await services.close()
    return int(owed)


async def pending_rows(db: Database) -> int:
    from sqlmodel import func, select

    from bot.models import Notification, OutboxState

    async with db.session() as s:
        count = await s.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.state == OutboxState.pending)
        )
        return int(count.one())


@dataclass
class Delivered:
    """One queue delivered: the rows owed, the messages (and edits) that
    reached a chat, the seconds from the first to the last, the 429s."""

    rows: int
    messages: int
    seconds: float
    refused: int

    @property
    def rate(self) -> float:
        return (self.messages - 1) / self.seconds


async def deliver_once(tmp: Path, url: str | None, members: int, runs: int) -> Delivered:
    """The real bot with its AIORateLimiter, as in production, against the
    fake server refusing more than 30 messages a second (429, retry_after),
    a queue owed before it starts; until no row is pending."""
    await wipe(url)
    tmp.mkdir(parents=True)  # noqa: ASYNC240 (before anything runs)
    database = url or f"sqlite+aiosqlite:///{tmp / 'delivery.db'}"
    delivered: list[float] = []  # when each message or edit reached a chat

    def heard(_chat: int, event: dict[str, Any]) -> None:
        if event["kind"] == "edit" or (event["kind"] == "message" and not event.get("mine")):
            delivered.append(time.perf_counter())

    async with FakeBotApi(flood_limit=FLOOD_LIMIT) as server:
        rows = await owe_a_queue(server, tmp, database, members, runs)
        server.listeners.append(heard)
        bot = BotProcess("sopbot", server, tmp, {"DATABASE_URL": database, "BENCH_LIMITER": "on"})
        await bot.start()
        db = Database(database)
        deadline = time.monotonic() + 600
        while await pending_rows(db):
            if time.monotonic() > deadline:
                raise SystemExit("the bot did not deliver its outbox in 10 minutes")
            await asyncio.sleep(0.1)
        await db.dispose()
        await bot.stop()
        return Delivered(rows, len(delivered), delivered[-1] - delivered[0], server.flood_refused)


async def delivery(
    tmp: Path, url: str | None, repeats: int, members: int, runs: int
) -> dict[str, Any]:
    """A queue delivered under Telegram's flood limit, `repeats` times: from
    the first message delivered to the last, messages a second and the 429s."""
    done = [await deliver_once(tmp / f"delivery-{n}", url, members, runs) for n in range(repeats)]
    return {
        "rate": spread([d.rate for d in done]),
        "ratio": spread([d.rate / FLOOD_LIMIT for d in done]),
        "refused": spread([float(d.refused) for d in done]),
        "messages": done[-1].messages,
        "rows": done[-1].rows,
        "people": members + 4,
    }


async def start_time(tmp: Path, url: str | None, repeats: int) -> Figure:
    """`sopbot run` (python -m bot.cli run) from spawn to its first getUpdates."""
    await wipe(url)
    seconds = []
    async with FakeBotApi() as server:
        database = url or f"sqlite+aiosqlite:///{tmp / 'start.db'}"
        await prepare_office(server, tmp, database, runs=3)
        for _ in range(repeats):
            before = len(server.calls("getUpdates"))
            t0 = time.perf_counter()
            proc = await spawn_bot(server, tmp, DATABASE_URL=database)
            await until(lambda b=before: len(server.calls("getUpdates")) > b, 60)  # type: ignore[misc]
            seconds.append(time.perf_counter() - t0)
            proc.send_signal(signal.SIGINT)
            await proc.wait()
    return spread(seconds)


# ------------------------------------------------------------------ statements


async def statements(tmp: Path, url: str | None) -> dict[str, tuple[int, int, int]]:
    from tests.test_bot_statements import counts

    await wipe(url)
    few = await counts(tmp / "statements-3", 3, url)
    await wipe(url)
    many = await counts(tmp / "statements-12", 12, url)
    return {k: (few[k].count, many[k].count, len(many[k].bookkeeping)) for k in few}


# ------------------------------------------------------------------ the table


def ms(f: Figure) -> str:
    return " / ".join(f"{v * 1000:.1f}" for v in f) + " ms"


def num(f: Figure, fmt: str = "{:.0f}") -> str:
    return " / ".join(fmt.format(v) for v in f)


def table(
    db: str,
    tp: dict[str, Any],
    counts: dict[str, tuple[int, int, int]],
    scale: list[ScaleFigures],
    start: Figure,
    flood: dict[str, Any],
) -> str:
    rows = [
        ("database", db),
        ("updates/s, sopbot (min / median / max)", num(tp["sop_rate"])),
        ("updates/s, bare PTB bot, same run", num(tp["bare_rate"])),
        ("ratio sopbot / bare", num(tp["ratio"], "{:.2f}x")),
        ("updates/s, bare bot answering as sopbot, no database", num(tp["shaped_rate"])),
        ("ratio of that bot / bare", num(tp["shaped_ratio"], "{:.2f}x")),
        (
            "CPU per update under load: sopbot / that bot / bare",
            " / ".join(f"{tp['cpu'][k] * 1000:.1f}" for k in ("sopbot", "shaped", "bare"))
            + " ms (median)",
        ),
        (
            "time per update in process_update under load, p50 / p99",
            f"{tp['p50'] * 1000:.1f} / {tp['p99'] * 1000:.1f} ms "
            f"({tp['handled_times']} updates; bare p50 {tp['bare_p50'] * 1000:.1f} ms)",
        ),
    ]
    longest, total, collections = tp["gc"]
    rows.append(
        (
            "full garbage collections in sopbot: longest, total",
            f"{longest * 1000:.0f} ms, {total * 1000:.0f} ms in {collections} "
            f"over {tp['updates']:,} updates",
        )
    )
    for kind, (p50, p99, cpu) in tp["alone"].items():
        rows.append(
            (
                f"{kind} one at a time: p50 / p99, CPU per update",
                f"{p50 * 1000:.1f} / {p99 * 1000:.1f} ms, {cpu * 1000:.1f} ms CPU",
            )
        )
    for kind, (few, many, bookkeeping) in counts.items():
        rows.append(
            (
                f"SQL statements, {kind}, 3 / 12 open runs",
                f"{few} / {many} (+ {bookkeeping} update-id bookkeeping)",
            )
        )
    for fig in scale:
        label = f"{fig.open_assignments // 1000}k open assignments"
        rows += [
            (f"deadline sweep, nothing due, {label}", ms(fig.sweep_idle)),
            (f"deadline sweep, {fig.due_steps} steps due, {label}", ms(fig.sweep_due)),
            (f"due-step query, {label}", ms(fig.due_query)),
            (f"next timer moment, {label}", ms(fig.next_moment)),
        ]
    rows += [
        (
            f"delivery under Telegram's limit: msg/s (ratio to {FLOOD_LIMIT}/s)",
            f"{num(flood['rate'], '{:.1f}')} ({num(flood['ratio'], '{:.2f}x')}); "
            f"{flood['messages']} messages owed at once to {flood['people']} people",
        ),
        ("429s (Too Many Requests) during that delivery", num(flood["refused"])),
        ("start to first getUpdates (sopbot run)", ms(start)),
        ("resident memory, idle", f"{tp['rss_idle']:.0f} MiB"),
        (f"resident memory after {tp['updates']:,} updates", f"{tp['rss_after']:.0f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|---|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    url = args.database_url
    if url:
        await refuse_used(url)
    quick = args.quick
    updates = args.updates or (3_000 if quick else 10_000)
    rounds, batch = (3, 200) if quick else (5, 400)
    repeats = 3 if quick else 5
    alone = 50 if quick else 200  # updates of each kind, one at a time
    deliveries = 1 if quick else 3  # queues delivered under the flood limit
    sizes = [15_000, 150_000]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("statements per update ...", file=sys.stderr, flush=True)
        counts = await statements(root, url)
        print("deadline sweep at scale ...", file=sys.stderr, flush=True)
        scale = [await measure_scale(root / f"scale-{n}", url, n, repeats) for n in sizes]
        print("start time ...", file=sys.stderr, flush=True)
        (root / "start").mkdir()
        start = await start_time(root / "start", url, repeats)
        print("throughput and memory ...", file=sys.stderr, flush=True)
        (root / "tp").mkdir()
        tp = await throughput(root / "tp", url, rounds, batch, updates, alone)
        print("delivery under the flood limit ...", file=sys.stderr, flush=True)
        flood = await delivery(root / "flood", url, deliveries, members=100, runs=2)
    await wipe(url)
    db = "postgresql" if url else "sqlite"
    print(table(db, tp, counts, scale, start, flood))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n{'quick' if quick else 'full'} run, {time.perf_counter() - started:.0f} s, {stamp}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 5 minutes)")
    parser.add_argument("--database-url", help="an empty PostgreSQL scratch database")
    parser.add_argument(
        "--updates", type=int, help="updates before memory (10,000; 3,000 with --quick)"
    )
    asyncio.run(main(parser.parse_args()))
