"""One injectable clock, so tests control time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = moment.astimezone(UTC)
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


class OffsetClock:
    """Real time shifted to start at a chosen moment: lets a test run the
    bot as a separate process "on Monday at 10:00" (CLOCK_START)."""

    def __init__(self, start: datetime) -> None:
        self._start = start.astimezone(UTC)
        self._mono = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._mono)


class ScaledClock:
    """Real time running `factor` times faster from a chosen moment: the
    training room's clock (bot/demo/), so a working hour passes in a minute
    at 60x and reminders come while a trainer watches. The factor can change
    while it runs (from that moment on, without a jump), and `advance` jumps
    ahead, e.g. to a meeting's start."""

    def __init__(self, start: datetime, factor: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware datetime")
        if factor <= 0:
            raise ValueError("factor must be positive")
        self._base = start.astimezone(UTC)
        self._mono = time.monotonic()
        self._factor = float(factor)

    @property
    def factor(self) -> float:
        return self._factor

    def now(self) -> datetime:
        return self._base + timedelta(seconds=(time.monotonic() - self._mono) * self._factor)

    def set_factor(self, factor: float) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self._base, self._mono = self.now(), time.monotonic()
        self._factor = float(factor)

    def advance(self, **delta: float) -> datetime:
        self._base += timedelta(**delta)
        return self.now()
