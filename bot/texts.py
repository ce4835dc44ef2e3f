"""Rendering of every user-facing text from the Jinja2 templates in templates/.

Messages use Telegram's HTML parse mode, so autoescaping is on: a unit's
note with "<" or "&" in it can never break a message.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
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
log = logging.getLogger(__name__)

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
    amount: float = size
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(amount)


LABELS_KEPT = 1024  # Texts.label's renders kept


class Texts:
    """A Jinja2 environment bound to the office's time zone."""

    def __init__(
        self,
        timezone: str = "Asia/Jakarta",
        directory: Path = TEMPLATES_DIR,
        *,
        role_name: Callable[[str], str] | None = None,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.tz_label = TZ_LABEL.get(timezone, timezone)
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            # Read once: a template edited on disk shows at the next start,
            # as an edited SOP or office file does (checking every file's
            # time on every message cost a stat call each).
            auto_reload=False,
        )
        self.env.filters.update(
            waktu=self.local_time,
            tanggal=self.local_date,
            hari=self.weekday,
            menit=minutes_text,
            ukuran=size_text,
            pendek=lambda v, n=12: (v or "")[:n],
            isian=self.typed_time,
            # A role key from the SOP definition as people know it ("Kepala Badan").
            peran=role_name or (lambda key: key),
        )
        self.env.globals["zona"] = self.tz_label
        self._labels: dict[tuple[object, ...], str] = {}

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

    def weekday(self, value: datetime | str | None) -> str:
        """'Sabtu': the day of the week in the office time zone."""
        moment = _as_datetime(value)
        return HARI[moment.astimezone(self.tz).weekday()] if moment else "-"

    def local_date(self, value: datetime | str | None) -> str:
        moment = _as_datetime(value)
        if moment is None:
            return "-"
        local = moment.astimezone(self.tz)
        return f"{HARI[local.weekday()]}, {local.day} {BULAN[local.month - 1]} {local.year}"

    def render(self, template: str, /, max_chars: int = TEXT_LIMIT, **context: Any) -> str:
        """Render templates/<template>.html.j2 as one message. Text over the
        limit is clipped at a safe place (never inside a tag or entity) and
        logged: callers that may be long use render_parts/render_caption."""
        text = self._full(template, context)
        if visible_length(text) > max_chars:
            log.warning(
                "%s: %d characters clipped to %d", template, visible_length(text), max_chars
            )
            return clip(text, max_chars)
        return text

    def render_parts(self, template: str, /, **context: Any) -> list[str]:
        """The whole text, as as many messages as it needs: split between
        paragraphs (or lines) so nothing is lost."""
        return split_html(self._full(template, context), TEXT_LIMIT)

    def render_caption(self, template: str, /, **context: Any) -> tuple[str, list[str]]:
        """A file's caption and the text messages that follow it: what does
        not fit Telegram's caption limit (a long note, many findings) goes
        in the follow-up, and the caption says so."""
        text = self._full(template, context)
        if visible_length(text) <= CAPTION_LIMIT:
            return text, []
        marker = self._full("continued", {})
        room = CAPTION_LIMIT - visible_length(marker) - 2
        head, rest = split_head(text, room)
        return f"{head}\n\n{marker}", split_html(rest, TEXT_LIMIT)

    def label(self, template: str, /, **context: str | bool) -> str:
        """A short text that depends on nothing but its few plain values (a
        button's label), rendered once per set of values: a /tugas renders a
        label for every button of every task line, always the same few."""
        key = (template, *sorted(context.items()))
        found = self._labels.get(key)
        if found is None:
            if len(self._labels) >= LABELS_KEPT:  # bounded: labels may carry an outcome's name
                self._labels.clear()
            found = self._labels[key] = self._full(template, context)
        return found

    def _full(self, template: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"{template}.html.j2").render(**context).strip()


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")
_MARKUP = re.compile(r"<[^>]*>|&[#a-zA-Z0-9]+;")


def plain(html_text: str) -> str:
    """The text a person sees once Telegram has parsed the HTML (for alerts,
    spreadsheets and length counts, where no markup is allowed)."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text))


def visible_length(html_text: str) -> int:
    """Length as Telegram counts it: after HTML parsing, in UTF-16 units."""
    return len(plain(html_text).encode("utf-16-le")) // 2


def split_html(text: str, limit: int) -> list[str]:
    """Cut HTML text into pieces of at most `limit` visible characters,
    preferring paragraph breaks, then line breaks, then spaces; never inside
    a tag or an entity. Tags open across a cut are closed at its end and
    reopened after it, so every piece is balanced HTML."""
    spans = _pack(text, 0, len(text), limit, SEPARATORS)
    pieces = _balance([text[a:b].strip() for a, b in spans])
    return [p for p in pieces if plain(p).strip()]


def split_head(text: str, limit: int) -> tuple[str, str]:
    """The longest first piece that fits `limit` (as split_html would cut it),
    and the rest of the text with its separators intact."""
    spans = _pack(text, 0, len(text), limit, SEPARATORS)
    end = spans[0][1]
    head, rest = _balance([text[:end].strip(), text[end:].strip()])
    return head, rest


SEPARATORS = ["\n\n", "\n", " ", ""]


def _cuts(text: str, start: int, end: int, sep: str) -> list[tuple[int, int]]:
    """Spans of text[start:end] between occurrences of `sep` that lie outside
    tags and entities (every safe position when `sep` is empty)."""
    protected = [(m.start(), m.end()) for m in _MARKUP.finditer(text, start, end)]

    def safe(i: int) -> bool:
        return not any(a < i < b for a, b in protected)

    if not sep:
        bounds = [start, *(i for i in range(start + 1, end) if safe(i)), end]
        return list(zip(bounds, bounds[1:], strict=False))
    spans, begin = [], start
    for m in re.compile(re.escape(sep)).finditer(text, start, end):
        if m.start() >= begin and safe(m.start()) and safe(m.end()):
            spans.append((begin, m.start()))
            begin = m.end()
    spans.append((begin, end))
    return spans


def _pack(text: str, start: int, end: int, limit: int, seps: list[str]) -> list[tuple[int, int]]:
    """Greedily join the spans cut at the coarsest separator while they fit;
    a span that alone is too long is cut at the next finer separator."""
    if visible_length(text[start:end]) <= limit or not seps:
        return [(start, end)]
    sep, *finer = seps
    out: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for a, b in _cuts(text, start, end, sep):
        if current is not None and visible_length(text[current[0] : b]) <= limit:
            current = (current[0], b)
            continue
        if current is not None:
            out.append(current)
            current = None
        if visible_length(text[a:b]) <= limit:
            current = (a, b)
        else:
            out.extend(_pack(text, a, b, limit, finer))
    if current is not None:
        out.append(current)
    return out


def _balance(pieces: list[str]) -> list[str]:
    """Close the tags each piece leaves open and reopen them in the next."""
    result = []
    stack: list[tuple[str, str]] = []  # (name, opening tag as written)
    for piece in pieces:
        opened = "".join(tag for _, tag in stack)
        for m in _TAG.finditer(piece):
            closing, name = m.group(1), m.group(2).lower()
            if closing:
                if stack and stack[-1][0] == name:
                    stack.pop()
            else:
                stack.append((name, m.group(0)))
        closed = "".join(f"</{name}>" for name, _ in reversed(stack))
        result.append(opened + piece + closed)
    return result


def clip(text: str, limit: int) -> str:
    """Shorten to `limit` visible characters without cutting a tag or entity."""
    if visible_length(text) <= limit:
        return text
    return split_html(text, limit - 1)[0] + "…"
