"""A regular time grid and its calendar: weekday, holiday and off-day of every slot.

Steps always divide a day (or are whole days), so "the same time of day" and "the same
weekday" are fixed slot offsets. Times are UTC seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

SECONDS_PER_DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Steps a grid may use: all divide a day; longer ones are whole days.
NICE_STEPS_S: tuple[int, ...] = (
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400,
    21600, 28800, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400,
)  # fmt: skip


def nice_step(cadence_s: float) -> int:
    """The allowed step nearest (in log scale) to the observed cadence."""
    cadence_s = max(float(cadence_s), 1.0)
    steps = np.array(NICE_STEPS_S, dtype=np.float64)
    return int(steps[np.argmin(np.abs(np.log(steps) - np.log(cadence_s)))])


def day_number(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def from_day(day: int) -> date:
    """The date of day number `day` (the inverse of day_number)."""
    return date.fromordinal(int(day) + EPOCH_ORDINAL)


@dataclass(frozen=True)
class GridCalendar:
    """Slot j starts at `origin_s + j * step_s`."""

    origin_s: int
    step_s: int
    size: int
    weekday: NDArray[np.int8]  # Mon=0 .. Sun=6
    holiday: NDArray[np.bool_]
    offday: NDArray[np.bool_]  # weekend or holiday

    @property
    def slots_per_day(self) -> int:
        """0 when the step is longer than a day (no daily or weekly calendar)."""
        return SECONDS_PER_DAY // self.step_s if self.step_s <= SECONDS_PER_DAY else 0

    @classmethod
    def build(
        cls,
        origin_s: int,
        step_s: int,
        size: int,
        holidays: Iterable[date] = (),
        weekend_days: Iterable[int] = (5, 6),
    ) -> GridCalendar:
        starts = origin_s + step_s * np.arange(size, dtype=np.int64)
        days = np.floor_divide(starts, SECONDS_PER_DAY)
        weekday = ((days + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday
        holiday_days = np.array([day_number(d) for d in holidays], dtype=np.int64)
        holiday = np.isin(days, holiday_days)
        weekend = np.isin(weekday, np.array(list(weekend_days), dtype=np.int8))
        return cls(origin_s, step_s, size, weekday, holiday, weekend | holiday)

    @classmethod
    def daily(
        cls,
        first_day: date,
        size: int,
        holidays: Iterable[date] = (),
        weekend_days: Iterable[int] = (5, 6),
    ) -> GridCalendar:
        return cls.build(
            day_number(first_day) * SECONDS_PER_DAY, SECONDS_PER_DAY, size, holidays, weekend_days
        )


@lru_cache(maxsize=32)
def shared_daily_calendar(
    first_day: int, days: int, holidays: tuple[date, ...], weekend_days: tuple[int, ...]
) -> GridCalendar:
    """The calendar of `days` daily slots from day number `first_day`, built once and kept
    for the next caller asking for the same grid (every analysis of a day asks for the same
    one: at light load each account built it again). Its arrays are read-only, since every
    caller holding it shares them."""
    calendar = GridCalendar.build(
        first_day * SECONDS_PER_DAY, SECONDS_PER_DAY, days, holidays, weekend_days
    )
    for array in (calendar.weekday, calendar.holiday, calendar.offday):
        array.flags.writeable = False
    return calendar
