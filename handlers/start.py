"""/start: joining by invitation link, or a greeting."""

from __future__ import annotations

from telegram import Update

from bot.errors import EngineError
from handlers.common import (
    Context,
    display_name,
    member_of,
    reply,
    reply_error,
    services,
    stranger,
)


def _steps_for(context: Context, roles: set[str]) -> list[dict[str, object]]:
    """The steps a person with these roles will be asked to do."""
    result = []
    for sop in services(context).sops.all():
        for step in sop.steps:
            if roles & set(step.actors) or step.reviewer in roles:
                result.append(
                    {
                        "number": step.number,
                        "uraian": step.uraian,
                        "waktu": step.waktu,
                        "sop": sop.name,
                    }
                )
    return result


async def start(update: Update, context: Context) -> None:
    svc = services(context)
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
            steps=_steps_for(context, {role.role}),
            office=svc.office.name,
        )
        return
    member = await member_of(update, context)
    if member is None:
        await stranger(update, context)
        return
    await reply(
        update,
        context,
        "greeting",
        name=member.name,
        roles=[(svc.members.role_name(r.role), r.unit_name) for r in member.roles],
        steps=_steps_for(context, member.role_names),
        office=svc.office.name,
    )
