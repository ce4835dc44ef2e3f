"""Button verbs: the one table of what a button may ask the bot to do.

A button's callback data is a short verb and ids ("dec:12:1"), never more
than Telegram's 64 bytes, and never a permission: the engine decides from
the database whether the person may do it now. The domain names a button by
its `Verb` (bot/views.py TaskAction), the handlers register one handler per
verb with its `pattern`, and templates/button.html.j2 labels it by the same
value. The values are the short words already in people's chats: changing
one would turn every old button of that verb into a forged one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DATA_LIMIT = 64  # bytes of callback data Telegram keeps
LARGEST_ID = 2**53  # what a Telegram client still represents exactly


class Verb(StrEnum):
    ok = "ok"  # Selesai: finish a step
    send = "send"  # Kirim ke semua unit: a distribution step
    dec = "dec"  # a decision's outcome
    up = "up"  # Unggah berkas: wait for a file for a task
    mtg = "mtg"  # Atur rapat: ask for a meeting's time and place
    mok = "mok"  # Ya, tetap: keep a meeting outside office hours
    view = "view"  # Lihat berkas unit: the reviewer's overview
    cls = "cls"  # Tutup dengan alasan: close units that cannot deliver
    acc = "acc"  # Terima: accept a unit's file
    ret = "ret"  # Kembalikan: return a unit's file with a note
    rsvp = "rsvp"  # Hadir / Tidak hadir
    pick = "pick"  # where a held file (or album) belongs
    page = "page"  # a page of a run's history
    cancel = "cancel"  # Batal under a question
    dlg = "dlg"  # Limpahkan: ask whom to hand a task to
    to = "to"  # hand the task to this colleague
    stat = "stat"  # Tabel lengkap: a run's whole status table, under /status
    # Gunakan draf ini / Pakai surat ini (a letter): the bot's draft becomes
    # the step's document. ("ltr", an earlier letter-only verb, is gone: its
    # old buttons are answered as unknown data.)
    use = "use"


@dataclass(frozen=True)
class VerbSpec:
    """What a verb's data carries.

    `ids` names the integers after the verb, in order; the first `required`
    must be there, the rest may be missing (buttons sent by an older version
    carried fewer). `on_task` marks the verbs of a task message whose first
    id is the step: a text or file sent as a reply to that message belongs
    to that step (handlers/uploads.py step_of_reply).
    """

    ids: tuple[str, ...]
    required: int
    on_task: bool = False

    @property
    def counts(self) -> range:
        return range(self.required, len(self.ids) + 1)


VERBS: dict[Verb, VerbSpec] = {
    Verb.ok: VerbSpec(("run_step_id",), 1, on_task=True),
    Verb.send: VerbSpec(("run_step_id",), 1, on_task=True),
    Verb.dec: VerbSpec(("run_step_id", "outcome"), 2, on_task=True),
    # The unit picks which of a member's tasks on the step is meant (a
    # member of two units has two); buttons from before had the step only.
    Verb.up: VerbSpec(("run_step_id", "unit_id"), 1, on_task=True),
    Verb.mtg: VerbSpec(("run_step_id",), 1, on_task=True),
    Verb.mok: VerbSpec(("run_step_id",), 1),
    Verb.view: VerbSpec(("run_step_id",), 1, on_task=True),
    # Without a unit: ask which; 0: every unit still awaited.
    Verb.cls: VerbSpec(("run_step_id", "unit_id"), 1, on_task=True),
    Verb.acc: VerbSpec(("file_id",), 1),
    Verb.ret: VerbSpec(("file_id",), 1),
    Verb.rsvp: VerbSpec(("meeting_id", "attending"), 2),
    # The held group it places; older questions named none (the oldest).
    Verb.pick: VerbSpec(("run_step_id", "unit_id", "group_id"), 2),
    Verb.page: VerbSpec(("run_id", "offset"), 2),
    # Under a "which task is this file for?" question: the group it cancels.
    Verb.cancel: VerbSpec(("group_id",), 0),
    Verb.dlg: VerbSpec(("assignment_id",), 1),
    Verb.to: VerbSpec(("assignment_id", "member_id"), 2),
    Verb.stat: VerbSpec(("run_id",), 1),
    Verb.use: VerbSpec(("run_step_id", "file_id"), 2, on_task=True),
}
assert set(VERBS) == set(Verb), "every verb has its entry"


def pattern(verb: Verb) -> re.Pattern[str]:
    """What a handler for this verb matches (python-telegram-bot applies it
    with re.match): the verb and as many ids as it may carry, nothing more.
    `decode` still checks the ids' size."""
    spec = VERBS[verb]
    return re.compile(rf"{verb.value}(?::[0-9]{{1,16}}){{{spec.required},{len(spec.ids)}}}\Z")


def encode(verb: Verb, *ids: int) -> str:
    """The callback data of a button."""
    verb = Verb(verb)
    assert len(ids) in VERBS[verb].counts, (verb, ids)
    data = ":".join([verb.value, *(str(i) for i in ids)])
    assert len(data.encode()) <= DATA_LIMIT, data
    return data


def decode(data: str | None) -> tuple[Verb, tuple[int, ...]] | None:
    """Callback data back to (verb, ids); None for anything not ours: an
    unknown verb, the wrong number of ids, an id that is not a small
    non-negative number."""
    if not data or len(data) > DATA_LIMIT:
        return None
    word, *parts = data.split(":")
    try:
        verb = Verb(word)
    except ValueError:
        return None
    if len(parts) not in VERBS[verb].counts:
        return None
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    ids = tuple(int(p) for p in parts)
    if any(i > LARGEST_ID for i in ids):
        return None
    return verb, ids
