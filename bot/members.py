"""The office's people: units, invitations, enrolment and roles.

Invitations are single-use random tokens; only their SHA-256 is stored, so a
database dump cannot be used to join.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.clock import Clock
from bot.db import Database, plain_rows, table
from bot.errors import InvalidInput, InvitationInvalid, NotEnrolled, NotFound
from bot.inbox import command
from bot.models import Event, Invitation, Member, MemberRole, Unit
from bot.outbox import queue
from bot.run.rules import require_one_of
from bot.sop import SopRegistry
from bot.views import ADMIN

STRANGER_QUIET = timedelta(hours=1)
TOKEN_HASH_SHOWN = 12  # hex digits of a refused token's SHA-256 kept in the log
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# Who sent an update: asked on every update, so built once (building a
# statement costs SQLAlchemy about as much as running it; see ARCHITECTURE,
# "Statements built once"), and read as plain rows of the columns a
# MemberInfo holds (bot/db.py, `plain_rows`).
_M, _R, _U = table(Member), table(MemberRole), table(Unit)
_BY_TELEGRAM = (
    sa_select(
        _M.c.id,
        _M.c.telegram_id,
        _M.c.name,
        _M.c.username,
        _M.c.active,
        _M.c.blocked_at,
        _R.c.role,
        _R.c.unit_id,
        _U.c.name.label("unit_name"),
    )
    .select_from(_M.outerjoin(_R, _R.c.member_id == _M.c.id).outerjoin(_U, _U.c.id == _R.c.unit_id))
    .where(_M.c.telegram_id == bindparam("telegram_id"))
    .order_by(_R.c.id)
)

# Who has blocked the bot: every /status shows them.
_BLOCKED = (
    select(Member)
    .where(col(Member.active).is_(True), col(Member.blocked_at).is_not(None))
    .order_by(col(Member.id))
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RoleInfo:
    role: str
    unit_id: int | None = None
    unit_name: str | None = None


@dataclass
class MemberInfo:
    id: int
    telegram_id: int
    name: str
    username: str | None
    active: bool
    roles: list[RoleInfo] = field(default_factory=list)
    blocked: bool = False

    def has(self, *roles: str) -> bool:
        return any(r.role in roles for r in self.roles)

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}


@dataclass(frozen=True)
class Duty:
    number: int
    uraian: str
    waktu: int
    sop: str
    # What the step asks of this person: the step's action, or "review" when
    # they review another role's uploads there.
    action: str = "confirm"


@dataclass(frozen=True)
class HelpProfile:
    """What /bantuan tells a member, decided from the SOP files and roles."""

    duties: list[Duty]
    can_start: bool
    can_report: bool
    is_admin: bool

    @property
    def actions(self) -> set[str]:
        return {d.action for d in self.duties}


def invitation_link(bot_username: str, token: str) -> str | None:
    """The deep link that opens the bot with `/start <token>` (a token is
    at most 64 characters of A-Za-z0-9_-, as Telegram requires)."""
    username = bot_username.lstrip("@")
    return f"https://t.me/{username}?start={token}" if username else None


def _member_info(member: Member, roles: list[RoleInfo]) -> MemberInfo:
    return MemberInfo(
        member.id or 0,
        member.telegram_id,
        member.name,
        member.username,
        member.active,
        roles,
        member.blocked_at is not None,
    )


class Membership:
    """Who belongs to the office and in which role."""

    def __init__(
        self,
        db: Database,
        sops: SopRegistry,
        clock: Clock,
        *,
        on_enrolled: Callable[[AsyncSession, int], Awaitable[object]] | None = None,
        on_roles_changed: Callable[[MemberInfo], Awaitable[object]] | None = None,
        admin_telegram_ids: Iterable[int] = (),
    ) -> None:
        self.db = db
        self.sops = sops
        self.clock = clock
        # Called in the enrolment's transaction (Engine.deliver_open_tasks), so
        # a newcomer gets the tasks already open for their role at once.
        self.on_enrolled = on_enrolled
        # Called after a member joined, gained a role or was revoked, once
        # committed, with the member as they are now: the wiring sets their
        # command menu by role (bot/app.py sets it; None without a bot).
        self.on_roles_changed = on_roles_changed
        self.admin_telegram_ids = frozenset(admin_telegram_ids)

    def roles(self) -> dict[str, bool]:
        """Every known role -> whether it needs a unit (admin is built in)."""
        result = {ADMIN: False}
        for sop in self.sops.all():
            for key, role in sop.roles.items():
                result[key] = result.get(key, False) or role.per_unit
        return result

    def role_name(self, role: str) -> str:
        for sop in self.sops.all():
            if role in sop.roles:
                return sop.roles[role].name
        return "Admin" if role == ADMIN else role

    async def sync_units(self, names: list[str]) -> None:
        """Make the Unit table match the office file; removed units are
        deactivated, never deleted, so old records keep their unit."""
        async with self.db.transaction() as s:
            existing = {u.name: u for u in (await s.exec(select(Unit))).all()}
            for name in names:
                unit = existing.get(name) or Unit(name=name)
                unit.active = True
                s.add(unit)
            for name, unit in existing.items():
                if name not in names and unit.active:
                    unit.active = False
                    s.add(unit)

    async def units(self) -> list[Unit]:
        async with self.db.session() as s:
            return list(
                (
                    await s.exec(
                        select(Unit).where(col(Unit.active).is_(True)).order_by(col(Unit.id))
                    )
                ).all()
            )

    async def _unit_by_name(self, s: AsyncSession, name: str) -> Unit:
        wanted = " ".join(name.split()).casefold()
        units = (await s.exec(select(Unit).where(col(Unit.active).is_(True)))).all()
        for unit in units:
            if unit.name.casefold() == wanted:
                return unit
        raise NotFound("unit", unit=name, units=[u.name for u in units])

    def _check_role(self, role: str, unit: str | None) -> bool:
        roles = self.roles()
        if role not in roles:
            raise InvalidInput("unknown_role", role=role, roles=sorted(roles))
        if roles[role] and not unit:
            raise InvalidInput("unit_required", role=role)
        if not roles[role] and unit:
            raise InvalidInput("unit_not_needed", role=role)
        return roles[role]

    async def create_invitation(
        self,
        role: str,
        *,
        unit: str | None = None,
        created_by: int | None = None,
        ttl_days: int = 7,
    ) -> str:
        """A fresh single-use token for the role (and unit)."""
        self._check_role(role, unit)
        token = secrets.token_urlsafe(24)
        now = self.clock.now()
        async with command(self.db, self.clock) as s:
            if created_by is not None:
                creator = await self.get(created_by, session=s)
                require_one_of(creator.role_names, [ADMIN])
            unit_row = await self._unit_by_name(s, unit) if unit else None
            invitation = Invitation(
                token_hash=token_hash(token),
                role=role,
                unit_id=unit_row.id if unit_row else None,
                created_by=created_by,
                created_at=now,
                expires_at=now + timedelta(days=ttl_days),
            )
            s.add(invitation)
            await s.flush()
            await append_event(
                s,
                "invitation_created",
                at=now,
                actor_id=created_by,
                details={
                    "invitation_id": invitation.id,
                    "role": role,
                    "unit": unit_row.name if unit_row else None,
                    "expires_at": invitation.expires_at.isoformat(),
                },
            )
        return token

    async def redeem(
        self, token: str, *, telegram_id: int, name: str, username: str | None = None
    ) -> tuple[MemberInfo, RoleInfo]:
        """Bind a Telegram account to the invitation's role and unit. A
        refusal is audited (see `_refused`) before it is raised."""
        try:
            member, role = await self._redeem(
                token, telegram_id=telegram_id, name=name, username=username
            )
        except InvitationInvalid as exc:
            await self._refused(token, telegram_id, exc)
            raise
        await self._roles_changed(member)
        return member, role

    async def _roles_changed(self, member: MemberInfo) -> None:
        if self.on_roles_changed is not None:
            await self.on_roles_changed(member)

    async def _refused(self, token: str, telegram_id: int, exc: InvitationInvalid) -> bool:
        """Record a refused invitation (reused, expired, revoked, mistyped) so
        an admin can see attempts. The token itself is not stored, only a
        short prefix of its hash; once per person per hour, like strangers."""
        details = {
            "telegram_id": telegram_id,
            "reason": exc.context.get("reason"),
            "token_sha256": token_hash(token or "")[:TOKEN_HASH_SHOWN],
            "invitation_id": exc.context.pop("invitation_id", None),
        }
        return await self._audit_attempt("invitation_refused", telegram_id, details)

    async def _redeem(
        self, token: str, *, telegram_id: int, name: str, username: str | None
    ) -> tuple[MemberInfo, RoleInfo]:
        if not TOKEN_PATTERN.match(token or ""):
            raise InvitationInvalid(reason="unknown")
        now = self.clock.now()
        async with command(self.db, self.clock) as s:
            invitation = (
                await s.exec(
                    select(Invitation)
                    .where(Invitation.token_hash == token_hash(token))
                    .with_for_update()
                )
            ).first()
            if invitation is None:
                raise InvitationInvalid(reason="unknown")
            for reason, refused in (
                ("revoked", invitation.revoked),
                ("used", invitation.used_at is not None),
                ("expired", invitation.expires_at <= now),
            ):
                if refused:
                    raise InvitationInvalid(reason=reason, invitation_id=invitation.id)
            member = await self._upsert_member(s, telegram_id, name, username)
            role = await self._grant(s, member, invitation.role, invitation.unit_id)
            invitation.used_at, invitation.used_by = now, member.id
            s.add(invitation)
            await append_event(
                s,
                "member_joined",
                at=now,
                actor_id=member.id,
                details={
                    "invitation_id": invitation.id,
                    "name": member.name,
                    "telegram_id": telegram_id,
                    "role": role.role,
                    "unit": role.unit_name,
                },
            )
            if self.on_enrolled is not None:
                await self.on_enrolled(s, member.id or 0)
            return await self.get(member.id or 0, session=s), role

    async def ensure_admin(
        self, *, telegram_id: int, name: str, username: str | None
    ) -> MemberInfo:
        """Enrol a configured admin (ADMIN_TELEGRAM_IDS) on first contact."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            known = await self.by_telegram(telegram_id, session=s)
            member = await self._upsert_member(s, telegram_id, name, username)
            info = await self.get(member.id or 0, session=s)
            # Joined, came back after a revocation, or became admin now.
            changed = known is None or not known.has(ADMIN)
            if not info.has(ADMIN):
                await self._grant(s, member, ADMIN, None)
                await append_event(
                    s,
                    "member_joined",
                    at=now,
                    actor_id=member.id,
                    details={
                        "name": member.name,
                        "telegram_id": telegram_id,
                        "role": ADMIN,
                        "source": "ADMIN_TELEGRAM_IDS",
                    },
                )
            info = await self.get(member.id or 0, session=s)
        if changed:
            await self._roles_changed(info)
        return info

    async def _upsert_member(
        self, s: AsyncSession, telegram_id: int, name: str, username: str | None
    ) -> Member:
        member = (await s.exec(select(Member).where(Member.telegram_id == telegram_id))).first()
        if member is None:
            member = Member(
                telegram_id=telegram_id,
                name=name[:120] or str(telegram_id),
                username=username,
                joined_at=self.clock.now(),
            )
        member.active = True
        member.blocked_at = None
        s.add(member)
        await s.flush()
        return member

    async def _grant(
        self, s: AsyncSession, member: Member, role: str, unit_id: int | None
    ) -> RoleInfo:
        existing = (
            await s.exec(
                select(MemberRole).where(
                    MemberRole.member_id == member.id,
                    MemberRole.role == role,
                    MemberRole.unit_id == unit_id,
                )
            )
        ).first()
        if existing is None:
            s.add(MemberRole(member_id=member.id or 0, role=role, unit_id=unit_id))
            await s.flush()
        unit = await s.get(Unit, unit_id) if unit_id else None
        return RoleInfo(role, unit_id, unit.name if unit else None)

    async def get(self, member_id: int, *, session: AsyncSession | None = None) -> MemberInfo:
        if session is None:
            async with self.db.session() as s:
                return await self.get(member_id, session=s)
        member = await session.get(Member, member_id)
        if member is None:
            raise NotFound("member")
        return await self._info(session, member)

    async def _info(self, s: AsyncSession, member: Member) -> MemberInfo:
        return (await self._infos(s, [member]))[0]

    async def _infos(self, s: AsyncSession, members: Sequence[Member]) -> list[MemberInfo]:
        """The members with their roles: one query for all of them."""
        ids = [m.id for m in members]
        rows = (
            (
                await s.exec(
                    select(MemberRole, Unit)
                    .join(Unit, col(Unit.id) == col(MemberRole.unit_id), isouter=True)
                    .where(col(MemberRole.member_id).in_(ids))
                    .order_by(col(MemberRole.id))
                )
            ).all()
            if ids
            else []
        )
        roles: dict[int, list[RoleInfo]] = {}
        for r, u in rows:
            roles.setdefault(r.member_id, []).append(
                RoleInfo(r.role, r.unit_id, u.name if u else None)
            )
        return [_member_info(m, roles.get(m.id or 0, [])) for m in members]

    async def recognise(
        self, telegram_id: int, *, name: str, username: str | None = None
    ) -> MemberInfo | None:
        """The member writing, or None for a stranger. Someone listed in
        ADMIN_TELEGRAM_IDS is enrolled as admin by whatever they send first,
        not only by /start."""
        member = await self.by_telegram(telegram_id)
        if telegram_id in self.admin_telegram_ids and (member is None or not member.has(ADMIN)):
            return await self.ensure_admin(telegram_id=telegram_id, name=name, username=username)
        return member

    async def by_telegram(
        self, telegram_id: int, *, session: AsyncSession | None = None
    ) -> MemberInfo | None:
        """The active member with this Telegram account, or None."""
        if session is None:
            async with self.db.session() as s:
                return await self.by_telegram(telegram_id, session=s)
        # One query, the member and their roles (an outer join): every
        # update asks who sent it.
        found = await plain_rows(session, _BY_TELEGRAM, {"telegram_id": telegram_id})
        if not found or not found[0].active:
            return None
        first = found[0]
        return MemberInfo(
            first.id,
            first.telegram_id,
            first.name,
            first.username,
            first.active,
            [RoleInfo(r.role, r.unit_id, r.unit_name) for r in found if r.role is not None],
            first.blocked_at is not None,
        )

    async def require_admin(self, actor_id: int) -> MemberInfo:
        actor = await self.get(actor_id)
        if not actor.active:
            raise NotEnrolled()
        require_one_of(actor.role_names, [ADMIN])
        return actor

    async def roster(self, actor_id: int) -> list[MemberInfo]:
        """The member list, for an admin (/anggota)."""
        await self.require_admin(actor_id)
        return await self.active_members()

    async def invitation_options(self, actor_id: int) -> tuple[list[str], list[str]]:
        """The roles and units an admin can invite to (/undang without arguments)."""
        await self.require_admin(actor_id)
        return sorted(self.roles()), [u.name for u in await self.units()]

    async def duties(self, member_id: int, *, role: str | None = None) -> list[Duty]:
        """The steps this member (or, given `role`, that role of theirs) will
        be asked to do, from the SOP definitions: for the welcome."""
        roles = {role} if role else (await self.get(member_id)).role_names
        return [
            Duty(
                step.number,
                step.uraian,
                step.waktu,
                sop.name,
                step.action.value if roles & set(step.actors) else "review",
            )
            for sop in self.sops.all()
            for step in sop.steps
            if roles & set(step.actors) or step.reviewer in roles
        ]

    async def help_profile(self, member_id: int, report_roles: list[str]) -> HelpProfile:
        """Starting a run is for whoever holds an SOP's first step (or an admin)."""
        member = await self.get(member_id)
        is_admin = member.has(ADMIN)
        return HelpProfile(
            duties=await self.duties(member_id),
            can_start=is_admin or any(member.has(*sop.first.actors) for sop in self.sops.all()),
            can_report=is_admin or member.has(*report_roles),
            is_admin=is_admin,
        )

    async def active_members(self) -> list[MemberInfo]:
        """The active members with their roles, by id."""
        async with self.db.session() as s:
            members = (
                await s.exec(
                    select(Member).where(col(Member.active).is_(True)).order_by(col(Member.id))
                )
            ).all()
            return await self._infos(s, members)

    async def blocked(self) -> list[MemberInfo]:
        """Active members who blocked the bot (for /status): one query when
        none has, which is the usual case."""
        async with self.db.session() as s:
            members = (await s.exec(_BLOCKED)).all()
            return await self._infos(s, members) if members else []

    async def revoke(self, actor_id: int | None, member_id: int) -> MemberInfo:
        """Deactivate a member; their records stay."""
        async with command(self.db, self.clock) as s:
            if actor_id is not None:
                actor = await self.get(actor_id, session=s)
                require_one_of(actor.role_names, [ADMIN])
                if actor_id == member_id:
                    raise InvalidInput("revoke_self")
            member = await s.get(Member, member_id)
            if member is None or not member.active:
                raise NotFound("member")
            member.active = False
            s.add(member)
            await s.flush()
            await append_event(
                s,
                "member_revoked",
                at=self.clock.now(),
                actor_id=actor_id,
                details={"member_id": member_id, "name": member.name},
            )
            # The person is told, so a later message of theirs is no surprise.
            now = self.clock.now()
            await queue(
                s,
                key=f"revoked:{member_id}:{int(now.timestamp())}",
                member_id=member_id,
                template="membership_revoked",
                context={"name": member.name},
                now=now,
            )
            revoked = await self._info(s, member)
        await self._roles_changed(revoked)
        return revoked

    async def was_revoked(self, telegram_id: int) -> bool:
        """Is this account a member whose membership an admin revoked?"""
        async with self.db.session() as s:
            member = (await s.exec(select(Member).where(Member.telegram_id == telegram_id))).first()
            return member is not None and not member.active

    async def record_stranger(self, telegram_id: int, what: str) -> bool:
        """Audit an attempt by someone not enrolled; what they sent is not kept."""
        return await self._audit_attempt(
            "stranger", telegram_id, {"telegram_id": telegram_id, "kind": what}
        )

    async def _audit_attempt(self, kind: str, telegram_id: int, details: dict[str, Any]) -> bool:
        """One entry of this kind per person per hour, so a flood cannot
        bloat the log; False when one was recorded within the hour."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            recent = (
                await s.exec(
                    select(Event).where(Event.kind == kind, Event.at > now - STRANGER_QUIET)
                )
            ).all()
            if any(e.details.get("telegram_id") == telegram_id for e in recent):
                return False
            await append_event(s, kind, at=now, actor_id=None, details=details)
            return True

    async def admin_chats(self) -> list[int]:
        """Telegram ids of the active admins: who is told when the bot fails."""
        async with self.db.session() as s:
            rows = await s.exec(
                select(Member.telegram_id)
                .join(MemberRole, col(MemberRole.member_id) == col(Member.id))
                .where(MemberRole.role == ADMIN, col(Member.active).is_(True))
            )
            return sorted(set(rows.all()))
