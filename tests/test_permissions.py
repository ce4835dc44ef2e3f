"""Who may do what is decided in the domain (members, queries, report),
from the acting member's id; handlers only translate the refusals."""

from __future__ import annotations

import pytest

from bot.errors import NotAllowed, NotFound, StepNotOpen
from bot.office import load_office
from bot.report import member_report
from tests.support import Office, to_collection


async def test_admin_only_member_commands(office: Office) -> None:
    m = office.members
    for who in ("perencana", "kepala", "unit1"):
        with pytest.raises(NotAllowed):
            await m.roster(office.id(who))
        with pytest.raises(NotAllowed):
            await m.invitation_options(office.id(who))
    roster = await m.roster(office.id("admin"))
    assert {p.name for p in roster} >= {"Drs. Kepala", "Staf 1", "Admin"}
    roles, units = await m.invitation_options(office.id("admin"))
    assert "perencana" in roles and "admin" in roles and "Sekretariat" in units


async def test_report_is_for_report_roles_and_admins(office: Office) -> None:
    config = load_office(None, "Asia/Jakarta")
    run_id = await to_collection(office)
    with pytest.raises(NotAllowed) as refused:
        await member_report(office.engine, office.id("unit1"), None, config)
    assert "admin" in refused.value.context["roles"]
    run, data = await member_report(office.engine, office.id("kepala"), None, config)
    assert run.id == run_id and data[:2] == b"PK"
    with pytest.raises(NotFound):
        await member_report(office.engine, office.id("admin"), run_id + 5, config)


async def test_the_domain_says_when_a_task_may_be_handed_on(office: Office) -> None:
    e = office.engine
    await e.runs.start(office.id("kepala"), "TW IV 2026")
    [form] = await e.queries.tasks(office.id("perencana"))
    assert form.can_delegate and form.assignment_id
    run_id = form.run_id
    assert await e.runs.open_step_id(run_id, 2) == form.run_step_id
    with pytest.raises(StepNotOpen):
        await e.runs.open_step_id(run_id, 9)  # not open yet
    with pytest.raises(NotFound):
        await e.runs.open_step_id(run_id + 1, 2)


async def test_duties_come_from_the_sop(office: Office) -> None:
    m = office.members
    unit = [d.number for d in await m.duties(office.id("unit1"))]
    assert unit == [6]
    planner = [d.number for d in await m.duties(office.id("perencana"))]
    assert {2, 3, 5, 6, 7, 8, 14, 15} <= set(planner)  # 6: reviews the units' files
    only = await m.duties(office.id("kepala"), role="kepala_badan")
    assert 1 in [d.number for d in only] and all(d.sop for d in only)
