"""/start: joining by invitation link, or a greeting."""

from __future__ import annotations

from telegram import Update

from bot.chat import SopContext
from bot.errors import EngineError
from handlers.common import display_name, member_of, reply, reply_error, stranger


async def start(update: Update, context: SopContext) -> None:
    svc = context.services
    user = update.effective_user
    assert user is not None
    name, username = display_name(update)
    token = context.args[0] if context.args else ""
    if token:
        try:
            member, role = await svc.members.redeem(
                token, telegram_id=user.id, name=name, username=username
            )
        except EngineError as exc:
            await reply_error(update, context, exc)
            return
        await reply(
            update,
            context,
            "welcome",
            name=member.name,
            role_name=svc.members.role_name(role.role),
            unit=role.unit_name,
            steps=await svc.members.duties(member.id, role=role.role),
            office=svc.office.name,
        )
        return
    known = await member_of(update, context)
    if known is None:
        await stranger(update, context)
        return
    await reply(
        update,
        context,
        "greeting",
        name=known.name,
        roles=[(svc.members.role_name(r.role), r.unit_name) for r in known.roles],
        steps=await svc.members.duties(known.id),
        office=svc.office.name,
    )
