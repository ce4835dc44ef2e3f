"""Working-time arithmetic: breaks, weekends, holidays, cuti bersama,
extra working days, and offices in other time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.calendar import CalendarConfig, WorkCalendar
from bot.clock import FakeClock
from bot.office import load_office

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar()


def test_friday_afternoon_runs_into_monday(cal: WorkCalendar) -> None:
    # 16:00 Friday + 60: 30 minutes on Friday (closes 16:30), 30 on Monday.
    assert cal.add_working_minutes(wib(2026, 11, 6, 16, 0), 60) == wib(2026, 11, 9, 8, 0)


def test_break_does_not_count(cal: WorkCalendar) -> None:
    assert cal.add_working_minutes(wib(2026, 11, 3, 11, 30), 60) == wib(2026, 11, 3, 13, 30)
    # Friday's break is 11:30-13:00.
    assert cal.add_working_minutes(wib(2026, 11, 6, 11, 0), 60) == wib(2026, 11, 6, 13, 30)


def test_ends_exactly_at_the_end_of_an_interval(cal: WorkCalendar) -> None:
    assert cal.add_working_minutes(wib(2026, 11, 3, 11, 0), 60) == wib(2026, 11, 3, 12, 0)
    assert cal.add_working_minutes(wib(2026, 11, 3, 15, 0), 60) == wib(2026, 11, 3, 16, 0)


def test_outside_office_hours_starts_at_next_opening(cal: WorkCalendar) -> None:
    assert cal.add_working_minutes(wib(2026, 11, 3, 6, 0), 15) == wib(2026, 11, 3, 7, 45)
    assert cal.add_working_minutes(wib(2026, 11, 3, 20, 0), 15) == wib(2026, 11, 4, 7, 45)
    assert cal.add_working_minutes(wib(2026, 11, 8, 10, 0), 15) == wib(2026, 11, 9, 7, 45)
    assert cal.add_working_minutes(wib(2026, 11, 8, 10, 0), 0) == wib(2026, 11, 9, 7, 30)
    assert cal.add_working_minutes(wib(2026, 11, 9, 9, 0), 0) == wib(2026, 11, 9, 9, 0)


def test_public_holiday_is_skipped(cal: WorkCalendar) -> None:
    # Monday 17 August 2026, Independence Day: Friday 16:00 + 60 lands on Tuesday.
    assert cal.holiday_name(date(2026, 8, 17))
    assert cal.add_working_minutes(wib(2026, 8, 14, 16, 0), 60) == wib(2026, 8, 18, 8, 0)


def test_cuti_bersama_is_skipped(cal: WorkCalendar) -> None:
    # Thursday 24 December 2026 is cuti bersama, Friday 25 Christmas.
    name = cal.holiday_name(date(2026, 12, 24))
    assert name and "Cuti Bersama" in name
    assert not cal.is_working_day(date(2026, 12, 24))
    assert cal.add_working_minutes(wib(2026, 12, 23, 15, 30), 60) == wib(2026, 12, 28, 8, 0)


def test_extra_closed_date_and_extra_working_saturday() -> None:
    cal = WorkCalendar(
        CalendarConfig(closed_dates=[date(2026, 11, 9)], extra_working_days=[date(2026, 11, 7)])
    )
    assert cal.holiday_name(date(2026, 11, 9)) == "Libur kantor"
    # Friday 16:00 + 60: 30 min Friday, 30 min on the working Saturday.
    assert cal.add_working_minutes(wib(2026, 11, 6, 16, 0), 60) == wib(2026, 11, 7, 8, 0)
    # Saturday 15:30 + 60: 30 min Saturday; Sunday and the closed Monday skipped.
    assert cal.add_working_minutes(wib(2026, 11, 7, 15, 30), 60) == wib(2026, 11, 10, 8, 0)


def test_office_in_another_time_zone() -> None:
    wita = WorkCalendar(CalendarConfig(timezone="Asia/Makassar"))
    due = wita.add_working_minutes(datetime(2026, 11, 5, 15, 30, tzinfo=WITA), 60)
    assert due == datetime(2026, 11, 6, 8, 0, tzinfo=WITA)
    assert due == datetime(2026, 11, 6, 0, 0, tzinfo=UTC)
    assert due.tzinfo == UTC
    wit = WorkCalendar(CalendarConfig(timezone="Asia/Jayapura"))
    # 07:30 WIB is 09:30 WIT: the same instant, different office time.
    start = wib(2026, 11, 3, 7, 30)
    assert wit.add_working_minutes(start, 60) == datetime(2026, 11, 3, 10, 30, tzinfo=WIT)
    assert WorkCalendar().add_working_minutes(start, 60) == wib(2026, 11, 3, 8, 30)


def test_week_has_37_and_a_half_hours(cal: WorkCalendar) -> None:
    assert cal.working_minutes_between(wib(2026, 11, 2, 0, 0), wib(2026, 11, 9, 0, 0)) == 2250


def test_working_minutes_between(cal: WorkCalendar) -> None:
    # Friday 16:00 to Monday 08:00: 30 + 30 minutes.
    assert cal.working_minutes_between(wib(2026, 11, 6, 16, 0), wib(2026, 11, 9, 8, 0)) == 60
    # Across a break.
    assert cal.working_minutes_between(wib(2026, 11, 3, 11, 30), wib(2026, 11, 3, 13, 30)) == 60
    assert cal.working_minutes_between(wib(2026, 11, 3, 13, 30), wib(2026, 11, 3, 11, 30)) == 0


def test_is_open_and_next_opening(cal: WorkCalendar) -> None:
    assert cal.is_open(wib(2026, 11, 3, 7, 30))
    assert not cal.is_open(wib(2026, 11, 3, 12, 30))
    assert not cal.is_open(wib(2026, 11, 3, 16, 0))
    assert cal.next_opening(wib(2026, 11, 3, 12, 30)) == wib(2026, 11, 3, 13, 0)
    assert cal.next_opening(wib(2026, 11, 6, 17, 0)) == wib(2026, 11, 9, 7, 30)


def test_naive_datetimes_are_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError):
        cal.add_working_minutes(datetime(2026, 11, 3, 8, 0), 10)
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 11, 3, 8, 0))


@pytest.mark.parametrize(
    "config",
    [
        {"timezone": "Asia/Atlantis"},
        {"hours": {0: ["08:00-07:00"]}},
        {"hours": {0: ["07:30-12:00", "11:00-16:00"]}},
        {"hours": {7: ["07:30-12:00"]}},
        {"hours": {0: ["7.30 sampai 12"]}},
        {"hours": {0: ["24:00-24:00"]}},
        {"hours": {0: ["00:00-24:01"]}},
        {"hours": {0: ["00:00-12:00", "11:00-24:00"]}},
        {"hours": {}, "extra_working_days": []},
    ],
)
def test_bad_office_hours_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CalendarConfig.model_validate(config)


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(wib(2026, 11, 3, 8, 0))
    assert clock.now() == wib(2026, 11, 3, 8, 0)
    assert clock.advance(minutes=90) == wib(2026, 11, 3, 9, 30)
    assert clock.now().tzinfo == UTC


def test_years_whose_cuti_bersama_are_not_known_yet_are_named() -> None:
    # Cuti bersama are decreed year by year: 2026 is in the package, 2099 cannot be.
    assert WorkCalendar().years_without_joint_holidays([2026, 2099]) == [2099]
    listed = WorkCalendar(CalendarConfig(closed_dates=[date(2099, 12, 24)]))
    assert listed.years_without_joint_holidays([2099]) == []
    public_only = WorkCalendar(CalendarConfig(holiday_categories=["public"]))
    assert public_only.years_without_joint_holidays([2099]) == []


ROUND_THE_CLOCK = {day: ["00:00-24:00"] for day in range(7)}


def test_an_office_open_round_the_clock_writes_24_00() -> None:
    """24:00 is the end of a day: the day's span reaches the next midnight,
    and one day's span meets the next day's without a gap."""
    cal = WorkCalendar(CalendarConfig(hours=ROUND_THE_CLOCK, holiday_categories=[]))
    assert cal.intervals(date(2026, 11, 3)) == [(wib(2026, 11, 3, 0, 0), wib(2026, 11, 4, 0, 0))]
    assert cal.is_open(wib(2026, 11, 3, 23, 59)) and cal.is_open(wib(2026, 11, 4, 0, 0))
    assert cal.outside_hours(wib(2026, 11, 7, 3, 0)) is None  # a Saturday night
    # A day and a half of working time, straight through midnight.
    start = wib(2026, 11, 3, 12, 0)
    assert cal.add_working_minutes(start, 36 * 60) == wib(2026, 11, 5, 0, 0)
    assert cal.working_minutes_between(start, wib(2026, 11, 5, 0, 0)) == 36 * 60
    assert cal.next_opening(wib(2026, 11, 4, 0, 0)) == wib(2026, 11, 4, 0, 0)


def test_an_evening_shift_to_midnight_then_closed() -> None:
    cal = WorkCalendar(CalendarConfig(hours={0: ["18:00-24:00"]}, holiday_categories=[]))
    monday = wib(2026, 11, 2, 23, 0)
    assert cal.is_open(monday) and not cal.is_open(wib(2026, 11, 3, 0, 0))
    assert cal.add_working_minutes(monday, 90) == wib(2026, 11, 9, 18, 30)
    odd = cal.outside_hours(wib(2026, 11, 2, 12, 0))
    assert odd == {"reason": "outside_hours", "opens": "18:00", "closes": "24:00"}


def test_the_office_file_takes_00_00_24_00(tmp_path: Path) -> None:
    office_file = tmp_path / "kantor.yaml"
    office_file.write_text(
        "name: Kantor Siaga\n"
        "calendar:\n"
        "  hours:\n" + "".join(f'    {d}: ["00:00-24:00"]\n' for d in range(7)),
        encoding="utf-8",
    )
    office = load_office(office_file)
    cal = WorkCalendar(office.calendar)
    assert cal.is_open(wib(2026, 11, 8, 2, 0))  # Sunday, 02:00
    week = cal.working_minutes_between(wib(2026, 11, 2, 0, 0), wib(2026, 11, 9, 0, 0))
    assert week == 7 * 24 * 60  # no holiday in that week
