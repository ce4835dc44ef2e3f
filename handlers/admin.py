"""Admin commands in chat: /anggota, /undang, /cabut."""

from __future__ import annotations

from telegram import Update

from bot.chat import SopContext
from bot.members import MemberInfo, invitation_link
from handlers.common import command_args, enrolled, reply
from handlers.parsing import parse_moment


@enrolled
async def anggota(update: Update, context: SopContext, member: MemberInfo) -> None:
    svc = context.services
    members = await svc.members.roster(member.id)
    await reply(update, context, "members", members=members, role_name=svc.members.role_name)


@enrolled
async def undang(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/undang <peran> [unit]"""
    svc = context.services
    role, _, unit = command_args(update).partition(" ")
    if not role:
        roles, units = await svc.members.invitation_options(member.id)
        await reply(update, context, "usage", command="undang", roles=roles, units=units)
        return
    token = await svc.members.create_invitation(
        role, unit=unit.strip() or None, created_by=member.id, ttl_days=svc.settings.invite_ttl_days
    )
    username = svc.settings.bot_username or (context.bot.username or "")
    await reply(
        update,
        context,
        "invitation",
        role_name=svc.members.role_name(role),
        unit=unit.strip() or None,
        link=invitation_link(username, token),
        days=svc.settings.invite_ttl_days,
    )


@enrolled
async def cabut(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/cabut <nomor anggota>"""
    arg = command_args(update)
    if not arg.isdigit():
        await reply(update, context, "usage", command="cabut")
        return
    revoked = await context.services.members.revoke(member.id, int(arg))
    await reply(update, context, "revoked", name=revoked.name)


@enrolled
async def jeda(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/jeda <nomor kegiatan>: pause a run's reminders (the head is away)."""
    await _pause(update, context, member, paused=True)


@enrolled
async def lanjutkan(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/lanjutkan <nomor kegiatan>: resume a run's reminders."""
    await _pause(update, context, member, paused=False)


async def _pause(update: Update, context: SopContext, member: MemberInfo, *, paused: bool) -> None:
    arg = command_args(update)
    if not arg.isdigit():
        await reply(update, context, "usage", command="jeda" if paused else "lanjutkan")
        return
    run = await context.services.engine.runs.pause(member.id, int(arg), paused)
    await reply(update, context, "paused_ack", title=run.title, paused=paused)


@enrolled
async def tenggat(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/tenggat <kegiatan> <langkah> <dd-mm-yyyy HH:MM>: move an open step's due time."""
    svc = context.services
    parts = command_args(update).split(maxsplit=2)
    moment = parse_moment(parts[2], svc.texts.tz) if len(parts) == 3 else None
    if moment is None or not parts[0].isdigit() or not parts[1].isdigit():
        await reply(update, context, "usage", command="tenggat")
        return
    run_step_id = await svc.engine.runs.open_step_id(int(parts[0]), int(parts[1]))
    moved = await svc.engine.runs.move_due(member.id, run_step_id, moment)
    await reply(update, context, "due_moved_ack", number=moved.number, due_at=moved.due_at)
