"""The days the fleet is closed, from a country's holiday calendar (the `holidays` package).

A list of dates in the rules runs out: past its last date every holiday reads as a quiet
business day, and every account that closes for it "drops" (a fleet-wide usage_anomaly for a
week). A named calendar does not run out: the rules name the country, the holidays of its
calendar the fleet closes on, and the days after a holiday it closes too (the Friday after
Thanksgiving); the `holidays` package computes the dates for any year, observed days
included (a holiday on a Saturday is observed on the Friday before).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache

import holidays
from pydantic import BaseModel, ConfigDict, Field, model_validator

OBSERVED_SUFFIX = " (observed)"


class HolidayCalendar(BaseModel):
    """Which of a country's holidays close the fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(description="ISO 3166-1 code, as the holidays package names it.")
    subdivision: str | None = Field(None, description="State or region code, if any.")
    categories: tuple[str, ...] = Field(
        ("public",), description="The package's categories to read (public, unofficial, ...)."
    )
    closed_on: tuple[str, ...] = Field(
        description="Holiday names (in the package's English) the fleet closes on; their "
        "observed days count too. A name the calendar never uses is an error at load."
    )
    days_after: tuple[str, ...] = Field(
        (), description="Holidays whose next day is closed too (the Friday after Thanksgiving)."
    )

    @model_validator(mode="after")
    def _names_are_the_calendar_s(self) -> HolidayCalendar:
        if self.country not in holidays.list_supported_countries():
            raise ValueError(f"unknown country {self.country!r} for the holiday calendar")
        try:
            # The names a decade of the calendar uses: a name given here must be one of them.
            known = _names(self.country_calendar(range(2020, 2030)).values())
        except NotImplementedError as exc:  # the package's answer to an unknown subdivision
            raise ValueError(str(exc)) from exc
        unknown = sorted(set(self.closed_on + self.days_after) - known)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a holiday of {self.country}'s calendar "
                f"(categories {', '.join(self.categories)}); it names {', '.join(sorted(known))}"
            )
        if not set(self.days_after) <= set(self.closed_on):
            raise ValueError("every holiday in days_after must also be in closed_on")
        return self

    def country_calendar(self, years: Iterable[int]) -> holidays.HolidayBase:
        return holidays.country_holidays(
            self.country,
            subdiv=self.subdivision,
            years=list(years),
            categories=self.categories,
            language="en_US",
        )

    def closed_days(self, first: date, last: date) -> tuple[date, ...]:
        """The closed days from `first` to `last`, both included, in order."""
        days: set[date] = set()
        for year in range(first.year, last.year + 1):
            days.update(_closed_in_year(self, year))
        return tuple(sorted(d for d in days if first <= d <= last))


def _holidays_of(label: str) -> list[tuple[str, bool]]:
    """A day's label may join several holidays ("A; B"), each possibly an observed day:
    (name, observed) for each."""
    return [
        (name.removesuffix(OBSERVED_SUFFIX), name.endswith(OBSERVED_SUFFIX))
        for name in label.split("; ")
    ]


def _names(labels: Iterable[str]) -> set[str]:
    return {name for label in labels for name, _ in _holidays_of(label)}


@cache
def _closed_in_year(calendar: HolidayCalendar, year: int) -> frozenset[date]:
    closed_on, days_after = set(calendar.closed_on), set(calendar.days_after)
    days = set()
    for day, label in calendar.country_calendar([year]).items():
        for name, observed in _holidays_of(label):
            if name in closed_on:
                days.add(day)
            if name in days_after and not observed:
                days.add(day + timedelta(days=1))
    return frozenset(days)
