"""Working time: office hours, Indonesian holidays and cuti bersama.

The SOP's waktu is in working minutes, so a deadline is "opened_at plus N
minutes of office time": breaks, nights, weekends, public holidays and cuti
bersama do not count. Holidays come from the `holidays` package (country ID;
its "government" category holds the cuti bersama, named "... Joint Holiday"
/ "Cuti Bersama ..."), plus the office's own closed dates and extra working
days from configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MON_THU = ["07:30-12:00", "13:00-16:00"]
FRIDAY = ["07:30-11:30", "13:00-16:30"]
DEFAULT_HOURS: dict[int, list[str]] = {0: MON_THU, 1: MON_THU, 2: MON_THU, 3: MON_THU, 4: FRIDAY}
SEARCH_DAYS = 3 * 366


# "24:00" ends a day (the usual notation for an office open round the
# clock, 00:00-24:00); `time` has no 24:00, so hours are kept as offsets
# from the day's midnight.
END_OF_DAY = "24:00"
DAY = timedelta(hours=24)


def _offset(text: str, *, end: bool) -> timedelta:
    """A clock time as the span since midnight; 24:00 only as an end."""
    if end and text == END_OF_DAY:
        return DAY
    moment = time.fromisoformat(text)
    return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _parse_interval(text: str) -> tuple[timedelta, timedelta]:
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = _offset(start_text, end=False)
        end = _offset(end_text, end=True)
    except ValueError as exc:
        raise ValueError(f"jam kerja '{text}' harus berbentuk HH:MM-HH:MM") from exc
    if start >= end:
        raise ValueError(f"jam kerja '{text}': jam mulai harus sebelum jam selesai")
    return start, end


def _parse_intervals(items: list[str]) -> list[tuple[timedelta, timedelta]]:
    intervals = [_parse_interval(item) for item in items]
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        if start < end:
            raise ValueError(f"jam kerja {items} harus berurutan dan tidak tumpang tindih")
    return intervals


class CalendarConfig(BaseModel):
    """Office hours per weekday (0 = Monday), time zone and exceptions."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Jakarta"
    hours: dict[int, list[str]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    holiday_country: str = "ID"
    holiday_categories: list[str] = Field(default_factory=lambda: ["public", "government"])
    closed_dates: list[date] = Field(default_factory=list)
    extra_working_days: list[date] = Field(default_factory=list)
    extra_working_day_hours: list[str] = Field(default_factory=lambda: list(MON_THU))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"zona waktu tidak dikenal: {value}") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[int, list[str]]) -> dict[int, list[str]]:
        for weekday, items in value.items():
            if not 0 <= weekday <= 6:
                raise ValueError(f"hari {weekday} tidak sah (0 = Senin ... 6 = Minggu)")
            _parse_intervals(items)
        return value

    @field_validator("extra_working_day_hours")
    @classmethod
    def _valid_extra(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("jam kerja hari kerja tambahan tidak boleh kosong")
        _parse_intervals(value)
        return value

    @model_validator(mode="after")
    def _some_working_time(self) -> CalendarConfig:
        if not any(self.hours.values()) and not self.extra_working_days:
            raise ValueError("tidak ada jam kerja sama sekali")
        return self


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("waktu harus memiliki zona waktu (timezone-aware)")
    return moment


class WorkCalendar:
    """Working-time arithmetic for one office. Returns aware UTC datetimes."""

    def __init__(self, config: CalendarConfig | None = None) -> None:
        self.config = config or CalendarConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self._hours = {day: _parse_intervals(items) for day, items in self.config.hours.items()}
        self._extra_hours = _parse_intervals(self.config.extra_working_day_hours)
        self._closed = set(self.config.closed_dates)
        self._extra = set(self.config.extra_working_days)
        self._holidays = lru_cache(maxsize=64)(self._load_holidays)

    def _load_holidays(self, year: int) -> dict[date, str]:
        table = holidays.country_holidays(
            self.config.holiday_country,
            years=year,
            categories=tuple(self.config.holiday_categories),
            language="id",
        )
        return dict(table.items())

    def years_without_joint_holidays(self, years: list[int]) -> list[int]:
        """Years for which the holidays package knows no cuti bersama yet.

        Cuti bersama are decreed each year (SKB 3 Menteri); until the package
        has them, those days count as working time unless the office lists
        them in closed_dates. Checked at start so an admin is told in time.
        """
        if "government" not in self.config.holiday_categories:
            return []
        missing = []
        for year in years:
            known = holidays.country_holidays(
                self.config.holiday_country, years=year, categories=("government",)
            )
            if not known and not any(d.year == year for d in self._closed):
                missing.append(year)
        return missing

    # ------------------------------------------------------------------ days

    def holiday_name(self, day: date) -> str | None:
        """Why the office is closed on a weekday it would open, if it is."""
        if day in self._closed:
            return "Libur kantor"
        return self._holidays(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        if day in self._extra:
            return True
        if day in self._closed or self.holiday_name(day):
            return False
        return bool(self._hours.get(day.weekday()))

    def outside_hours(self, moment: datetime) -> dict[str, str] | None:
        """Why `moment` falls outside the office's days and hours, or None
        when it is within a working day between opening and closing (a
        meeting over the midday break is fine): `reason` is non_working_day
        (with the `holiday` if one) or outside_hours (with `opens`, `closes`)."""
        local = _aware(moment).astimezone(self.tz)
        day = local.date()
        if not self.is_working_day(day):
            return {"reason": "non_working_day", "holiday": self.holiday_name(day) or ""}
        spans = self.intervals(day)
        opens, closes = spans[0][0], spans[-1][1]
        if not opens <= local < closes:
            return {
                "reason": "outside_hours",
                "opens": opens.strftime("%H:%M"),
                "closes": END_OF_DAY if closes.date() > day else closes.strftime("%H:%M"),
            }
        return None

    def next_working_day(self, after: datetime) -> datetime:
        """09:00 (office time) of the first working day after `after`'s own
        day: a plausible example when asking for a meeting time."""
        day = _aware(after).astimezone(self.tz).date()
        for _ in range(SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return datetime.combine(day, time(9, 0), self.tz)
        raise ValueError("tidak ada hari kerja dalam 3 tahun: periksa konfigurasi")

    def _day_hours(self, day: date) -> list[tuple[timedelta, timedelta]]:
        if not self.is_working_day(day):
            return []
        if day in self._extra:
            return self._hours.get(day.weekday()) or self._extra_hours
        return self._hours.get(day.weekday(), [])

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working intervals as aware datetimes in the office zone
        (one that ends at 24:00 ends at the next day's midnight)."""
        midnight = datetime.combine(day, time(0), self.tz)
        return [(midnight + start, midnight + end) for start, end in self._day_hours(day)]

    def opening_of_day(self, day: date) -> datetime | None:
        spans = self.intervals(day)
        return spans[0][0].astimezone(UTC) if spans else None

    def _spans_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after `moment`, in order, without end
        (but with a guard against a calendar with no working time)."""
        day = moment.astimezone(self.tz).date()
        empty = 0
        while True:
            spans = [(s, e) for s, e in self.intervals(day) if e > moment]
            if spans:
                empty = 0
                yield from spans
            else:
                empty += 1
                if empty > SEARCH_DAYS:
                    raise ValueError("tidak ada hari kerja dalam 3 tahun: periksa konfigurasi")
            day += timedelta(days=1)

    # ------------------------------------------------------------- moments

    def is_open(self, at: datetime) -> bool:
        at = _aware(at)
        return any(s <= at < e for s, e in self.intervals(at.astimezone(self.tz).date()))

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when the office is open, else the next interval's start."""
        at = _aware(at)
        for start, _end in self._spans_from(at):
            return max(start, at).astimezone(UTC)
        raise AssertionError("unreachable")

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of office time after `start`."""
        start = _aware(start)
        if minutes < 0:
            raise ValueError("menit tidak boleh negatif")
        if minutes == 0:
            return self.next_opening(start)
        remaining = timedelta(minutes=minutes)
        for span_start, span_end in self._spans_from(start):
            begin = max(span_start, start)
            available = span_end - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        raise AssertionError("unreachable")

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Office minutes in [start, end); 0 when end is not after start."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            return 0.0
        total = timedelta()
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for span_start, span_end in self.intervals(day):
                overlap = min(span_end, end) - max(span_start, start)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total.total_seconds() / 60
