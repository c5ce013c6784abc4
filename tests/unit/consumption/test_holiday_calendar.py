"""The fleet's closed days come from a country's calendar for any year, not from a list
that runs out."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.common.settings import Settings
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.holiday_calendar import HolidayCalendar

# The dates the rules listed by hand until the calendar replaced them (2025-2028; the
# ones on a weekend were left out: they add nothing to a weekend).
HAND_LIST_2025_2028 = """
2025-01-01 2025-01-20 2025-02-17 2025-05-26 2025-07-04 2025-09-01 2025-11-27 2025-11-28
2025-12-24 2025-12-25 2025-12-31 2026-01-01 2026-01-19 2026-02-16 2026-05-25 2026-07-03
2026-09-07 2026-11-26 2026-11-27 2026-12-24 2026-12-25 2026-12-31 2027-01-01 2027-01-18
2027-02-15 2027-05-31 2027-07-05 2027-09-06 2027-11-25 2027-11-26 2027-12-24 2027-12-31
2028-01-17 2028-02-21 2028-05-29 2028-07-04 2028-09-04 2028-11-23 2028-11-24 2028-12-25
"""


def _detector() -> DetectorConfig:
    return load_consumption_rules(Settings().rules_dir).anomalies.detector


def _business_days(days: tuple[date, ...]) -> set[date]:
    return {d for d in days if d.weekday() < 5}


def test_the_rules_calendar_gives_the_former_hand_list_s_business_days() -> None:
    closed = _detector().closed_days(date(2025, 1, 1), date(2028, 12, 31))
    assert _business_days(closed) == {date.fromisoformat(d) for d in HAND_LIST_2025_2028.split()}


def test_the_calendar_does_not_run_out() -> None:
    closed = _detector().closed_days(date(2035, 1, 1), date(2035, 12, 31))
    # Thanksgiving 2035 is Thursday the 22nd; the Friday after is closed too.
    assert {date(2035, 11, 22), date(2035, 11, 23), date(2035, 12, 25)} <= set(closed)
    assert date(2035, 10, 8) not in closed  # Columbus Day: the fleet works
    assert date(2035, 11, 12) not in closed  # Veterans Day (observed): the fleet works
    assert len(_business_days(closed)) == 11


def test_an_observed_day_counts_and_the_day_after_follows_the_holiday_itself() -> None:
    calendar = HolidayCalendar(
        country="US", closed_on=("Independence Day", "Thanksgiving Day"), days_after=()
    )
    # 2026-07-04 is a Saturday, observed on Friday the 3rd.
    assert calendar.closed_days(date(2026, 7, 1), date(2026, 7, 6)) == (
        date(2026, 7, 3),
        date(2026, 7, 4),
    )
    after = calendar.model_copy(update={"days_after": ("Independence Day",)})
    # The day after the holiday (Sunday the 5th), not after the observed Friday.
    assert after.closed_days(date(2026, 7, 1), date(2026, 7, 6)) == (
        date(2026, 7, 3),
        date(2026, 7, 4),
        date(2026, 7, 5),
    )


def test_listed_days_add_to_the_calendar_s_within_the_range() -> None:
    company_day = date(2030, 8, 2)
    cfg = DetectorConfig(
        holiday_calendar=HolidayCalendar(country="US", closed_on=("Labor Day",)),
        holidays=[company_day, date(2031, 8, 1)],
    )
    assert cfg.closed_days(date(2030, 8, 1), date(2030, 9, 30)) == (company_day, date(2030, 9, 2))
    assert DetectorConfig(holidays=[company_day]).closed_days(
        company_day, company_day + timedelta(days=1)
    ) == (company_day,)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"country": "XX", "closed_on": ("Christmas Day",)}, "unknown country 'XX'"),
        ({"country": "US", "closed_on": ("Thanksgiving",)}, "Thanksgiving: not a holiday"),
        (
            {"country": "US", "subdivision": "ZZ", "closed_on": ("Christmas Day",)},
            "does not have subdivision ZZ",
        ),
        (
            {"country": "US", "categories": ("bogus",), "closed_on": ("Christmas Day",)},
            "Category is not supported: bogus",
        ),
        # Christmas Eve is in the US calendar's unofficial category only.
        ({"country": "US", "closed_on": ("Christmas Eve",)}, "Christmas Eve: not a holiday"),
        (
            {"country": "US", "closed_on": ("Labor Day",), "days_after": ("Thanksgiving Day",)},
            "days_after must also be in closed_on",
        ),
    ],
)
def test_a_calendar_the_package_cannot_give_is_refused_at_load(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        HolidayCalendar.model_validate(fields)


def test_another_country_s_calendar_works_the_same_way() -> None:
    calendar = HolidayCalendar(country="DE", closed_on=("Christmas Day", "Second Day of Christmas"))
    assert calendar.closed_days(date(2030, 12, 20), date(2030, 12, 31)) == (
        date(2030, 12, 25),
        date(2030, 12, 26),
    )
