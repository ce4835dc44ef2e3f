"""Benchmark: the real Application against the fake Bot API server, as the
people use it. Prints figures; asserts nothing.

    .venv/bin/python -m bench.chat_bench [--members 4] [--database-url URL]

It measures what an office would feel: how long a command takes to be
answered, how long the form takes to reach every unit member at step 3
(Telegram's flood limits, kept by AIORateLimiter, set the pace), and how
long five units' workbooks take from upload to receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bot.office import DEFAULT_UNITS
from tests.fakes.world import running_bot
from tests.support import DATA, FORM, UNIT_FILES, XLSX


async def main(members_per_unit: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_bot(Path(tmp), database_url=url) as world:
            kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
            await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
            rina = await world.join("rina", 1003, "Rina", "perencana")
            staff = {}
            for u, unit in enumerate(DEFAULT_UNITS):
                for k in range(members_per_unit):
                    key = f"u{u}-{k}"
                    staff[key] = await world.join(
                        key, 5000 + u * 100 + k, f"Staf {key}", "anggota_tim", unit
                    )

            # A command's round trip: /tugas typed, answer received.
            rounds = []
            for _ in range(20):
                before = len(rina.messages)
                t0 = time.perf_counter()
                await rina.send_command("/tugas")
                while len(rina.messages) == before:  # noqa: ASYNC110 (the fake records, not signals)
                    await asyncio.sleep(0.005)
                rounds.append(time.perf_counter() - t0)

            # Steps 1-3: the form reaches every unit member.
            await kepala.send_command("/mulai", "TW IV 2026")
            await world.idle()
            task = rina.latest("Langkah 2")
            await rina.send_document(FORM.read_bytes(), FORM.name, XLSX, reply_to=task)
            await world.idle()
            await rina.press(rina.latest("Langkah 2"), "Selesai")
            await world.idle()
            t0 = time.perf_counter()
            await rina.press(rina.latest("Langkah 3"), "Kirim ke semua unit")
            await world.idle(limit=120)
            fan_out = time.perf_counter() - t0
            reached = sum(1 for p in staff.values() if p.documents())

            # Steps 4-5 through the engine, then five units upload at once.
            engine = world.services.engine
            ids = {
                k: (await world.services.members.by_telegram(p.id)).id
                for k, p in world.people.items()
            }
            [invite] = await engine.queries.tasks(ids["sekretaris"])
            await engine.steps.schedule_meeting(
                ids["sekretaris"],
                invite.run_step_id,
                world.clock.now() + timedelta(hours=1),
                "Aula",
                outside_hours_ok=True,
            )
            [meeting] = await engine.queries.tasks(ids["kepala"])
            world.clock.advance(hours=1)  # step 5 is finished once the meeting has started
            await engine.steps.complete(ids["kepala"], meeting.run_step_id)
            await world.idle(limit=120)
            uploaders = [staff[f"u{u}-0"] for u in range(len(DEFAULT_UNITS))]
            files = list(UNIT_FILES.values())
            t0 = time.perf_counter()
            await asyncio.gather(
                *(
                    p.send_document((DATA / name).read_bytes(), name, XLSX)
                    for p, name in zip(uploaders, files, strict=False)
                )
            )
            await world.idle(limit=120)
            uploads = time.perf_counter() - t0
            receipts = sum(1 for p in uploaders if p.find("Tanda terima"))
            sent = len(world.server.calls("sendMessage")) + len(world.server.calls("sendDocument"))

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database:              {'postgresql' if url else 'sqlite'}")
    print(f"people:                {3 + len(staff)} ({members_per_unit} per unit)")
    print(
        f"/tugas round trip:     median {statistics.median(rounds) * 1000:.0f} ms, "
        f"max {max(rounds) * 1000:.0f} ms (20 tries)"
    )
    print(f"form to every member:  {fan_out:.2f} s ({reached}/{len(staff)} reached)")
    print(f"5 uploads to receipts: {uploads:.2f} s ({receipts}/5 receipts)")
    print(f"messages sent in all:  {sent}")
    print(f"peak RSS:              {rss:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=4, help="anggota tim per unit")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.members, args.database_url))
