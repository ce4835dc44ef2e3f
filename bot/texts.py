"""Rendering of every user-facing text from the Jinja2 templates in templates/.

Messages use Telegram's HTML parse mode, so autoescaping is on: a unit's
note with "<" or "&" in it can never break a message.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

HARI = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
BULAN = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]
TZ_LABEL = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def minutes_text(value: float | int | None) -> str:
    """Working minutes as '1 jam 30 menit'."""
    if value is None:
        return "-"
    total = int(round(float(value)))
    hours, minutes = divmod(total, 60)
    if hours and minutes:
        return f"{hours} jam {minutes} menit"
    if hours:
        return f"{hours} jam"
    return f"{minutes} menit"


def size_text(size: int | None) -> str:
    if not size:
        return "0 B"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


class Texts:
    """A Jinja2 environment bound to the office's time zone."""

    def __init__(self, timezone: str = "Asia/Jakarta", directory: Path = TEMPLATES_DIR) -> None:
        self.tz = ZoneInfo(timezone)
        self.tz_label = TZ_LABEL.get(timezone, timezone)
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters.update(
            waktu=self.local_time,
            tanggal=self.local_date,
            menit=minutes_text,
            ukuran=size_text,
            pendek=lambda v, n=12: (v or "")[:n],
            isian=self.typed_time,
        )
        self.env.globals["zona"] = self.tz_label

    def typed_time(self, value: datetime) -> str:
        """'27-11-2026 09:00': a moment as people type it to the bot."""
        return value.astimezone(self.tz).strftime("%d-%m-%Y %H:%M")

    def local_time(self, value: datetime | str | None, with_day: bool = True) -> str:
        """'Senin, 2 November 2026 08:00 WIB' in the office time zone."""
        moment = _as_datetime(value)
        if moment is None:
            return "-"
        local = moment.astimezone(self.tz)
        text = f"{local.day} {BULAN[local.month - 1]} {local.year} {local:%H:%M} {self.tz_label}"
        return f"{HARI[local.weekday()]}, {text}" if with_day else text

    def local_date(self, value: datetime | str | None) -> str:
        moment = _as_datetime(value)
        if moment is None:
            return "-"
        local = moment.astimezone(self.tz)
        return f"{HARI[local.weekday()]}, {local.day} {BULAN[local.month - 1]} {local.year}"

    def render(self, template: str, /, max_chars: int = TEXT_LIMIT, **context: Any) -> str:
        """Render templates/<template>.html.j2, cut to Telegram's limit."""
        text = self.env.get_template(f"{template}.html.j2").render(**context).strip()
        return clip(text, max_chars)


def clip(text: str, limit: int) -> str:
    """Shorten to `limit` characters without cutting an HTML tag or entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Drop a half-written tag or entity at the end.
    for opener, closer in (("<", ">"), ("&", ";")):
        last_open = cut.rfind(opener)
        if last_open > cut.rfind(closer):
            cut = cut[:last_open]
    return _close_tags(cut) + "…"


def _close_tags(text: str) -> str:
    import re

    stack: list[str] = []
    for match in re.finditer(r"<(/?)([a-z-]+)[^>]*>", text):
        closing, tag = match.group(1), match.group(2)
        if closing:
            if stack and stack[-1] == tag:
                stack.pop()
        else:
            stack.append(tag)
    return text + "".join(f"</{tag}>" for tag in reversed(stack))
