"""The audit seal's timer: every minute (AUDIT_SEAL_INTERVAL) it asks the domain whether a seal
is owed (a working day has opened, or a run has ended, since the last one;
bot/seal.py decides) and, when one was made, nudges the sender so the
admins' quiet line goes out. A minute's check instead of a timer at the next
opening: the witness file and the database are the truth, and both may
change under a running bot (`sopbot audit seal`, a restore)."""

from __future__ import annotations

import logging

from bot.chat import SopContext
from bot.seal import SealConflict, Sealer, SealError

log = logging.getLogger(__name__)

NAME = "audit-seal"


class SealJobs:
    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    async def tick(self, context: SopContext) -> None:
        try:
            sealed = await self.sealer.seal_if_owed()
        except SealConflict as conflict:
            log.error("audit chain contradicts its newest seal: %s", conflict)
            await self.sealer.alert(conflict)
            sealed = None
        except SealError as exc:
            log.error("audit seal not made: %s", exc)
            return
        if sealed is not None and sealed.new:
            log.info("audit seal #%s", sealed.seal.seq)
        sender = context.bot_data.sender
        if sender is not None and sealed is not None:
            await sender.flush(context.bot)
