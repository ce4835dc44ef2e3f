"""Reading what people type: a meeting's date, time and place; a run title."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

_MEETING = re.compile(
    r"^\s*(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4})\s+(?:pukul\s+|jam\s+)?"
    r"(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:\s*(?:WIB|WITA|WIT))?\s*[,;-]?\s*(?P<place>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)


def parse_meeting(text: str, tz: tzinfo) -> tuple[datetime, str] | None:
    """'25-11-2026 09:00 Ruang Rapat' -> (aware time in the office zone, place)."""
    match = _MEETING.match(text or "")
    if not match:
        return None
    try:
        moment = datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"]),
            int(match["M"]),
            tzinfo=tz,
        )
    except ValueError:
        return None
    place = " ".join(match["place"].split())
    return (moment, place) if place else None


def split_title(text: str) -> tuple[str, str | None]:
    """'/mulai Judul | catatan' -> ('Judul', 'catatan')."""
    title, _, note = (text or "").partition("|")
    return title.strip(), (note.strip() or None)


_MOMENT = re.compile(r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\s+(\d{1,2})[:.](\d{2})\s*$")


def parse_moment(text: str, tz: tzinfo) -> datetime | None:
    """'27-11-2026 14:00' -> an aware datetime in the office zone."""
    match = _MOMENT.match(text or "")
    if not match:
        return None
    d, m, y, hh, mm = (int(g) for g in match.groups())
    try:
        return datetime(y, m, d, hh, mm, tzinfo=tz)
    except ValueError:
        return None
