"""`--as-of DAY` for the commands that read the warehouse as it stood on a day: a clear
one-line refusal for a day that is not a date, or that lies after the warehouse's data
(an analysis of days nobody recorded would be computed from nothing)."""

from __future__ import annotations

from datetime import date

from services.cli.errors import fail


class DayAfterDataError(ValueError):
    """The requested day is after the last day the warehouse has data for."""

    def __init__(self, day: date, last_day: date) -> None:
        super().__init__(
            f"--as-of {day.isoformat()} is after the warehouse's data, which ends on "
            f"{last_day.isoformat()}; use {last_day.isoformat()} or an earlier day"
        )


def parse_day(value: str | None, option: str = "--as-of") -> date | None:
    """YYYY-MM-DD, or None when the option was not given."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        reason = str(exc).replace("Invalid isoformat string", "not YYYY-MM-DD")
        raise fail(
            f"{option} {value!r} is not a day ({reason}); write it as YYYY-MM-DD", 2
        ) from None


def refuse_after_data(day: date | None, last_day: date) -> None:
    if day is not None and day > last_day:
        raise DayAfterDataError(day, last_day)
