"""The training room's office: one person per role of the SOP (two
planners), one member of staff per unit of the office file, and an admin,
each a `Person` on the built-in Bot API server. They join as real people do:
each taps an invitation link (`/start <token>`), the admin is named in
ADMIN_TELEGRAM_IDS and writes first."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.botapi import BotApiServer, Person
from bot.services import Services

ADMIN_ID = 9000
# Telegram user ids of the cast: small numbers a trainer can tell apart.
FIRST_ID = 1001
UNIT_STAFF = ["Ahmad Fauzi", "Dewi Lestari", "Bambang Susilo", "Nur Aini", "Yusuf Hidayat"]


@dataclass(frozen=True)
class Actor:
    """A person of the training office: who they are on the page and in the SOP."""

    key: str
    person: Person
    role: str | None  # the SOP role they were invited to; None: the admin
    role_label: str
    unit: str | None = None

    @property
    def id(self) -> int:
        return self.person.id

    @property
    def name(self) -> str:
        return self.person.first_name


def cast(server: BotApiServer, services: Services) -> list[Actor]:
    """Who the training office has, in the order the page lists them."""
    roles = services.members.role_name
    actors: list[Actor] = []
    ids = iter(range(FIRST_ID, FIRST_ID + 100))

    def add(key: str, name: str, role: str | None, label: str, unit: str | None = None) -> None:
        person = Person(server, ADMIN_ID if role is None else next(ids), name)
        actors.append(Actor(key, person, role, label, unit))

    add("kepala", "Drs. Hendra Wijaya", "kepala_badan", roles("kepala_badan"))
    add("sekretaris", "Siti Rahmawati", "sekretaris", roles("sekretaris"))
    add("perencana1", "Rina Kurniasih", "perencana", roles("perencana"))
    add("perencana2", "Dodi Saputra", "perencana", roles("perencana"))
    for i, unit in enumerate(services.office.units, start=1):
        name = UNIT_STAFF[(i - 1) % len(UNIT_STAFF)]
        add(f"unit{i}", name, "anggota_tim", roles("anggota_tim"), unit)
    add("admin", "Admin Latihan", None, "Admin")
    return actors


async def enrol(actors: list[Actor], services: Services, *, limit: float = 30.0) -> None:
    """Everyone taps their invitation link (the admin just writes /start),
    one after another: each is enrolled and welcomed before the next taps,
    so the office is the same every time (the bot handles different chats
    at once, and the order people joined decides, e.g., which planner is
    sent which units' files). Returns when all are in."""
    deadline = time.monotonic() + limit
    for actor in actors:
        if actor.role is None:
            await actor.person.send_command("/start")
        else:
            token = await services.members.create_invitation(actor.role, unit=actor.unit)
            await actor.person.send_command("/start", token)
        while not actor.person.messages or await services.members.by_telegram(actor.id) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{actor.name} belum terdaftar setelah {limit:.0f} detik")
            await asyncio.sleep(0.05)
