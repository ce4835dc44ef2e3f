"""Admin commands in chat: /anggota, /undang, /cabut."""

from __future__ import annotations

from telegram import Update

from bot.engine import ADMIN
from bot.errors import NotAllowed
from bot.members import MemberInfo
from handlers.common import Context, enrolled, reply, services


def _require_admin(member: MemberInfo) -> None:
    if not member.has(ADMIN):
        raise NotAllowed(roles=["admin"])


def _args(update: Update) -> str:
    text = update.effective_message.text if update.effective_message else ""
    return (text or "").partition(" ")[2].strip()


@enrolled
async def anggota(update: Update, context: Context, member: MemberInfo) -> None:
    _require_admin(member)
    svc = services(context)
    members = await svc.members.list()
    await reply(update, context, "members", members=members, role_name=svc.members.role_name)


@enrolled
async def undang(update: Update, context: Context, member: MemberInfo) -> None:
    """/undang <peran> [unit]"""
    _require_admin(member)
    svc = services(context)
    role, _, unit = _args(update).partition(" ")
    if not role:
        await reply(
            update,
            context,
            "usage",
            command="undang",
            roles=sorted(svc.members.roles()),
            units=[u.name for u in await svc.members.units()],
        )
        return
    token = await svc.members.create_invitation(
        role, unit=unit.strip() or None, created_by=member.id, ttl_days=svc.settings.invite_ttl_days
    )
    username = svc.settings.bot_username.lstrip("@") or (context.bot.username or "")
    await reply(
        update,
        context,
        "invitation",
        role_name=svc.members.role_name(role),
        unit=unit.strip() or None,
        link=f"https://t.me/{username}?start={token}",
        days=svc.settings.invite_ttl_days,
    )


@enrolled
async def cabut(update: Update, context: Context, member: MemberInfo) -> None:
    """/cabut <nomor anggota>"""
    _require_admin(member)
    arg = _args(update)
    if not arg.isdigit():
        await reply(update, context, "usage", command="cabut")
        return
    revoked = await services(context).members.revoke(member.id, int(arg))
    await reply(update, context, "revoked", name=revoked.name)
