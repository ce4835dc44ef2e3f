"""Telegram refuses a bot more than about 30 messages in a second (429, and
the outbox then pauses every send). A queue owed at once, a form to every
unit member, must go out at Telegram's pace without one: the bot's rate
limiter (bot/app.py `rate_limiter`) against the fake server's flood limit."""

from __future__ import annotations

from pathlib import Path

from bot.outbox import queue
from tests.fakes.world import running_bot


async def test_a_queue_owed_at_once_meets_no_429(tmp_path: Path) -> None:
    async with running_bot(tmp_path, messages_per_second=29) as world:
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        member_id = await world.member_id(kepala)
        before = len(kepala.messages)
        world.server.flood_limit = 30  # bot-wide; the fake has no per-chat limit
        async with world.services.db.transaction() as s:
            for n in range(40):
                await queue(
                    s,
                    key=f"seal:{n}",
                    member_id=member_id,
                    template="audit_seal",
                    context={"seq": n, "hash": "ab" * 8},
                    now=world.clock.now(),
                )
        await world.idle()
        assert world.server.flood_refused == 0
        assert len(kepala.messages) - before == 40
