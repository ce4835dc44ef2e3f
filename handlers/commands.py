"""Commands: /mulai /tugas /status /riwayat /laporan /bantuan /batal /hentikan."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.chat import SopContext, button, keyboard
from bot.errors import InvalidInput, NotFound
from bot.members import MemberInfo
from bot.outbox import SentMessage
from bot.report import (
    member_monitoring,
    member_report,
    monitoring_report,
    monitoring_words,
    parse_period,
)
from bot.verbs import Verb
from bot.views import Task, TaskAction, iso
from handlers import actions as steps
from handlers import uploads
from handlers.common import command_args, enrolled, member_of, reply, reply_raw, stranger
from handlers.parsing import split_title

MAX_TASK_MESSAGES = 10
HISTORY_PAGE = 10
FULL_STATUS = "lengkap"  # /status lengkap: every open run's whole table
FINISHED_SHOWN = 3  # runs that ended, named by /status when none is open


@enrolled
async def mulai(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/mulai [kunci-sop:] Judul | catatan — the first SOP unless one is named."""
    svc = context.services
    text = command_args(update)
    sop_key, _, rest = text.partition(":")
    if rest and sop_key.strip() in svc.sops:
        text = rest
    else:
        sop_key = ""
    title, note = split_title(text)
    if not title:
        raise InvalidInput("title_missing")
    run = await svc.engine.runs.start(
        member.id,
        title,
        note=note,
        sop_key=sop_key.strip() or None,
        request_key=f"update:{update.update_id}",
    )
    [status] = await svc.engine.queries.run_status(run.id)
    await reply(
        update,
        context,
        "run_started",
        title=run.title,
        note=note,
        sop=svc.sops.get(run.sop_key).name,
        open_steps=[st for st in status.steps if st.state == "open"],
    )


def task_view(task: Task) -> dict[str, Any]:
    return {
        "run_title": task.run_title,
        "number": task.number,
        "uraian": task.uraian,
        "unit_name": task.unit_name,
        "due_at": iso(task.due_at),
        "state": task.state,
        "note": task.note,
        "action": task.action,
        "draft_name": task.draft_name,
    }


async def send_tasks(update: Update, context: SopContext, member: MemberInfo) -> None:
    tasks = await context.services.engine.queries.tasks(member.id)
    if not tasks:
        await reply(update, context, "no_tasks")
        await uploads.remind_held(update, context, member)
        return
    await reply(
        update, context, "tasks_header", count=len(tasks), shown=min(len(tasks), MAX_TASK_MESSAGES)
    )
    chat = update.effective_chat
    if chat is None:
        return
    sent: list[SentMessage] = []
    try:
        for task in tasks[:MAX_TASK_MESSAGES]:
            actions = list(task.actions)
            if task.can_delegate and task.assignment_id:
                actions.append(TaskAction(Verb.dlg, (task.assignment_id,)))
            shown = task_view(task)
            text = context.texts.render("task_line", **shown)
            message = await context.bot.send_message(
                chat.id, text, reply_markup=keyboard(context.texts, actions)
            )
            # Kept as a sent message of its step, so that when the step (or the
            # unit's part) is settled its buttons go like a task message's.
            sent.append(
                SentMessage.about(
                    message.message_id,
                    task,
                    key=f"task_line:{chat.id}:{message.message_id}",
                    member_id=member.id,
                    template="task_line",
                    context=shown,
                )
            )
    finally:
        # Every line sent is kept, in one transaction; a step settled while
        # the lines were on their way did not see them: theirs lose their
        # buttons at once, as its task messages did.
        await context.services.engine.keep(sent)
    await uploads.remind_held(update, context, member)  # files still waiting for a choice


@enrolled
async def tugas(update: Update, context: SopContext, member: MemberInfo) -> None:
    await send_tasks(update, context, member)


@enrolled
async def status(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/status: one message per open run, so a busy office never loses a
    run's tail; each run at a glance (templates/status_brief.html.j2), its
    whole table one tap away (Verb.stat) or all of them by /status lengkap.
    Without an open run: the last runs that ended."""
    arg = command_args(update).casefold()
    if arg not in ("", FULL_STATUS):
        await reply(update, context, "usage", command="status")
        return
    svc = context.services
    runs = await svc.engine.queries.run_status()
    blocked = await svc.members.blocked()
    if not runs:
        ended = [r for r in await svc.engine.queries.runs(open_only=False) if r.state != "open"]
        ended.sort(key=lambda r: r.ended_at or r.started_at, reverse=True)
        await reply(
            update,
            context,
            "status_brief",
            run=None,
            finished=ended[:FINISHED_SHOWN],
            blocked=blocked,
        )
        return
    for i, run in enumerate(runs):
        last = i == len(runs) - 1
        if arg == FULL_STATUS:
            await reply(update, context, "status", run=run, blocked=blocked if last else [])
            continue
        table = InlineKeyboardMarkup([[button(context.texts, Verb.stat, run.run_id)]])
        await reply(
            update, context, "status_brief", table, run=run, blocked=blocked if last else []
        )


async def status_table(update: Update, context: SopContext, run_id: int) -> None:
    """A run's whole status table (templates/status.html.j2), in place of
    the glance whose button asked for it; as new messages when that message
    can no longer be edited, or for what does not fit in one."""
    svc = context.services
    found = await svc.engine.queries.run_status(run_id)
    if not found:
        raise NotFound("run")
    blocked = await svc.members.blocked()
    first, *rest = context.texts.render_parts("status", run=found[0], blocked=blocked)
    query = update.callback_query
    assert query is not None
    try:
        await query.edit_message_text(first)  # the keyboard goes: the table is shown
    except BadRequest:  # too old to edit
        rest.insert(0, first)
    for part in rest:
        await reply_raw(update, context, part)


async def history_page(
    context: SopContext, run_id: int, offset: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    svc = context.services
    status = await svc.engine.queries.run_status(run_id)
    if not status:
        raise NotFound("run")
    events, total = await svc.engine.queries.events(run_id, offset=offset, limit=HISTORY_PAGE)
    names = {m.id: m.name for m in await svc.members.active_members()}
    text = context.texts.render(
        "history",
        run=status[0],
        events=events,
        names=names,
        offset=offset,
        total=total,
        outcome_labels=await svc.engine.queries.outcome_labels(run_id),
    )
    t = context.texts
    nav = []
    if offset > 0:
        nav.append(button(t, Verb.page, run_id, max(0, offset - HISTORY_PAGE), label="prev"))
    if offset + HISTORY_PAGE < total:
        nav.append(button(t, Verb.page, run_id, offset + HISTORY_PAGE, label="next"))
    return text, InlineKeyboardMarkup([nav]) if nav else None


@enrolled
async def riwayat(update: Update, context: SopContext, member: MemberInfo) -> None:
    arg = command_args(update)
    svc = context.services
    if arg:
        if not arg.isdigit():
            raise NotFound("run")
        run_id = int(arg)
    else:
        runs = await svc.engine.queries.runs(open_only=False)
        if not runs:
            await reply(update, context, "no_runs")
            return
        run_id = runs[0].id or 0
    text, markup = await history_page(context, run_id, 0)
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)


async def bantuan(update: Update, context: SopContext) -> None:
    member = await member_of(update, context)
    if member is None:
        await stranger(update, context)
        return
    svc = context.services
    profile = await svc.members.help_profile(member.id, svc.office.report_roles)
    await reply(update, context, "help", profile=profile)


@enrolled
async def batal(update: Update, context: SopContext, member: MemberInfo) -> None:
    await steps.cancel_all(update, context, member)


@enrolled
async def hentikan(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/hentikan <nomor kegiatan> <alasan>: cancel a run."""
    number, _, reason = command_args(update).partition(" ")
    if not number.isdigit() or not reason.strip():  # the reason is required
        await reply(update, context, "usage", command="hentikan")
        return
    run = await context.services.engine.runs.cancel(member.id, int(number), reason)
    await reply(update, context, "run_cancelled_ack", title=run.title)


async def unknown(update: Update, context: SopContext) -> None:
    member = await member_of(update, context)
    if member is None:
        await stranger(update, context)
        return
    await reply(update, context, "unknown_command")


@enrolled
async def laporan(update: Update, context: SopContext, member: MemberInfo) -> None:
    """/laporan [nomor]: the monev workbook of a run (the latest by default),
    with its monitoring form and chart; /laporan 2026 (or 2026-1, 2026-2):
    the monitoring form of the year's (semester's) runs."""
    svc = context.services
    arg = command_args(update)
    assert update.effective_chat is not None
    chat = update.effective_chat.id
    if parse_period(arg, monitoring_words(svc.engine)) is not None:
        found = await member_monitoring(svc.engine, member.id, arg, svc.office)
        if not found.forms:
            await reply(update, context, "monitoring_empty", period=found.period)
            return
        name = f"monitoring-sop-{arg}"
        await context.bot.send_document(chat, found.workbook, filename=f"{name}.xlsx")
    else:
        if arg and not arg.isdigit():
            raise InvalidInput("period_format")
        run, data = await member_report(
            svc.engine, member.id, int(arg) if arg else None, svc.office
        )
        caption = context.texts.render("report_caption", max_chars=1024, title=run.title)
        await context.bot.send_document(
            chat, data, caption=caption, filename=f"laporan-monev-kegiatan-{run.id}.xlsx"
        )
        found = await monitoring_report(svc.engine, svc.office, [run], run.title)
        name = f"monitoring-sop-kegiatan-{run.id}"
    bad = sum(1 for form in found.forms for m in form.steps if m.good is False)
    runs = len({r.id for form in found.forms for r in form.runs})
    caption = context.texts.render(
        "monitoring_caption", max_chars=1024, period=found.period, runs=runs, bad=bad
    )
    await context.bot.send_document(chat, found.document, caption=caption, filename=f"{name}.docx")
    for form, chart in zip(found.forms, found.charts, strict=True):
        sop = form.sop_name if len(found.forms) > 1 else None
        text = context.texts.render(
            "monitoring_chart", max_chars=1024, period=found.period, sop=sop
        )
        await context.bot.send_photo(chat, chart, caption=text)
