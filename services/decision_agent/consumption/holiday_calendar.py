"""The days the fleet is closed, from holiday rules that hold for every year.

A list of dates in the rules runs out: past its last date every holiday reads as a quiet
business day, and every account that closes for it "drops" (a fleet-wide usage_anomaly for a
week). A rule does not run out: a fixed day of the year (`fixed: 07-04`), the nth weekday of
a month (the fourth Thursday of November; -1 for the last), or a day counted from Easter (-2
for Good Friday), optionally moved to a weekday when it falls on a weekend (`observed`) and
shifted by `days_after` (the Friday after Thanksgiving). The date arithmetic is
python-dateutil's (relativedelta, easter). The `holidays` package knows every country's
calendar, but importing it loads all of them (~17 MB per process, which took the decision
agent past its 150 MB budget), so the rules name the few days a fleet closes on instead.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Literal

from dateutil.easter import easter
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta, weekday
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = {"MO": MO, "TU": TU, "WE": WE, "TH": TH, "FR": FR, "SA": SA, "SU": SU}
SATURDAY, SUNDAY = 5, 6


class HolidayRule(BaseModel):
    """One holiday, for any year: exactly one of `fixed`, `month` with `weekday` and `nth`, or
    `easter_offset`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # Not `on`: YAML reads that key as the boolean true.
    fixed: str | None = Field(None, description="A fixed day of the year, MM-DD (12-25).")
    month: int | None = Field(None, ge=1, le=12)
    weekday: str | None = Field(None, description="MO .. SU, with `month` and `nth`.")
    nth: int | None = Field(None, description="1..5 from the month's start, -1 for the last.")
    easter_offset: int | None = Field(
        None, description="Days from Easter Sunday (-2: Good Friday)."
    )
    observed: Literal["as_is", "nearest_weekday", "next_monday"] = Field(
        "as_is",
        description="On a weekend: stay (as_is), Saturday -> Friday and Sunday -> Monday "
        "(nearest_weekday, US federal), or the Monday after (next_monday).",
    )
    days_after: int = Field(0, ge=0, description="Shift the (observed) day by this many days.")

    @field_validator("fixed")
    @classmethod
    def _month_day(cls, value: str | None) -> str | None:
        if value is not None:
            month, _, day = value.partition("-")
            try:
                date(2000, int(month), int(day))  # a leap year: 02-29 is a day of some years
            except ValueError as exc:
                raise ValueError(f"fixed: {value!r} is not a day of the year (MM-DD)") from exc
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> HolidayRule:
        kinds = [
            self.fixed is not None,
            self.month is not None or self.weekday is not None or self.nth is not None,
            self.easter_offset is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                f"{self.name}: give exactly one of `fixed` (MM-DD), `month` + `weekday` + `nth`, "
                "or `easter_offset`"
            )
        if kinds[1]:
            if self.month is None or self.weekday is None or self.nth is None:
                raise ValueError(f"{self.name}: `month`, `weekday` and `nth` go together")
            if self.weekday not in WEEKDAYS:
                raise ValueError(f"{self.name}: weekday {self.weekday!r} is not one of MO .. SU")
            if self.nth == 0 or not -5 <= self.nth <= 5:
                raise ValueError(f"{self.name}: nth is 1..5, or -1..-5 from the month's end")
        return self

    def day_in(self, year: int) -> date | None:
        """The closed day of `year`'s holiday (it may fall in the next or the previous year
        once observed and shifted); None when the holiday does not occur that year."""
        if self.fixed is not None:
            month, day = (int(part) for part in self.fixed.split("-"))
            try:
                holiday = date(year, month, day)
            except ValueError:  # 02-29 in a common year
                return None
        elif self.easter_offset is not None:
            holiday = easter(year) + timedelta(days=self.easter_offset)
        else:
            assert self.month is not None and self.weekday is not None and self.nth is not None
            nth_weekday: weekday = WEEKDAYS[self.weekday](self.nth)
            start = 1 if self.nth > 0 else 31  # relativedelta clamps 31 to the month's end
            holiday = date(year, self.month, 1) + relativedelta(day=start, weekday=nth_weekday)
            if holiday.month != self.month:  # a fifth weekday the month does not have
                return None
        return _observed(holiday, self.observed) + timedelta(days=self.days_after)


def _observed(day: date, rule: str) -> date:
    """The weekday a weekend holiday is taken on, by `rule` (see HolidayRule.observed)."""
    if day.weekday() not in (SATURDAY, SUNDAY) or rule == "as_is":
        return day
    if rule == "nearest_weekday":
        return day + timedelta(days=-1 if day.weekday() == SATURDAY else 1)
    return day + timedelta(days=7 - day.weekday())  # next_monday


class HolidayCalendar(BaseModel):
    """The holidays a fleet closes on, as rules for every year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[HolidayRule, ...]

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[HolidayRule, ...]) -> tuple[HolidayRule, ...]:
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"holiday named twice: {', '.join(repeated)}")
        return rules

    def closed_days(self, first: date, last: date) -> tuple[date, ...]:
        """The closed days from `first` to `last`, both included, in order. The years around
        the range count too: New Year's Day on a Saturday is observed on December 31st."""
        days: set[date] = set()
        for year in range(first.year - 1, last.year + 2):
            days.update(_closed_in_year(self, year))
        return tuple(sorted(d for d in days if first <= d <= last))


@cache
def _closed_in_year(calendar: HolidayCalendar, year: int) -> frozenset[date]:
    return frozenset(d for rule in calendar.rules if (d := rule.day_in(year)) is not None)
