"""The fleet's closed days come from rules that hold for every year, not from a list of
dates that runs out."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.common.settings import Settings
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.holiday_calendar import HolidayCalendar, HolidayRule

# The dates the rules listed by hand until rules replaced them (2025-2028; the ones on a
# weekend were left out: they add nothing to a weekend).
HAND_LIST_2025_2028 = """
2025-01-01 2025-01-20 2025-02-17 2025-05-26 2025-07-04 2025-09-01 2025-11-27 2025-11-28
2025-12-24 2025-12-25 2025-12-31 2026-01-01 2026-01-19 2026-02-16 2026-05-25 2026-07-03
2026-09-07 2026-11-26 2026-11-27 2026-12-24 2026-12-25 2026-12-31 2027-01-01 2027-01-18
2027-02-15 2027-05-31 2027-07-05 2027-09-06 2027-11-25 2027-11-26 2027-12-24 2027-12-31
2028-01-17 2028-02-21 2028-05-29 2028-07-04 2028-09-04 2028-11-23 2028-11-24 2028-12-25
"""
# The shipped rules' holidays by the names the `holidays` package gives them.
PACKAGE_NAMES = {
    "New Year's Day",
    "Martin Luther King Jr. Day",
    "Washington's Birthday",
    "Memorial Day",
    "Independence Day",
    "Labor Day",
    "Thanksgiving Day",
    "Christmas Eve",
    "Christmas Day",
    "New Year's Eve",
}


def _detector() -> DetectorConfig:
    return load_consumption_rules(Settings().rules_dir).anomalies.detector


def _business_days(days: object) -> set[date]:
    return {d for d in days if d.weekday() < 5}  # type: ignore[attr-defined]


def _rule(**fields: object) -> HolidayRule:
    return HolidayRule.model_validate({"name": "h", **fields})


def test_the_shipped_rules_give_the_former_hand_list_s_business_days() -> None:
    closed = _detector().closed_days(date(2025, 1, 1), date(2028, 12, 31))
    assert _business_days(closed) == {date.fromisoformat(d) for d in HAND_LIST_2025_2028.split()}


def test_the_shipped_rules_agree_with_the_holidays_package_to_2060() -> None:
    """A second, independent source: the `holidays` package's US calendar (public and
    unofficial), its observed days included, plus the day after Thanksgiving."""
    import holidays

    expected = set()
    for day, label in holidays.country_holidays(
        "US", years=range(2025, 2061), categories=("public", "unofficial"), language="en_US"
    ).items():
        for name in label.split("; "):
            if name.removesuffix(" (observed)") in PACKAGE_NAMES:
                expected.add(day)
            if name == "Thanksgiving Day":
                expected.add(day + timedelta(days=1))
    closed = _detector().closed_days(date(2025, 1, 1), date(2060, 12, 31))
    assert _business_days(closed) == _business_days(expected)
    assert len(_business_days(closed)) > 36 * 10


def test_the_decision_agent_does_not_load_the_holidays_package() -> None:
    # It costs ~17 MB per process (it loads every country), which the RSS budget has not.
    probe = (
        "import sys; from datetime import date; import services.decision_agent.app; "
        "from services.common.settings import Settings; "
        "from services.decision_agent.consumption.analyzer import load_consumption_rules; "
        "load_consumption_rules(Settings().rules_dir).anomalies.detector.closed_days("
        "date(2040, 1, 1), date(2040, 12, 31)); print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('holidays', 'dateutil')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "'dateutil.easter'" in loaded  # the probe reached the rules
    assert "'holidays" not in loaded


def test_the_rules_do_not_run_out() -> None:
    closed = _detector().closed_days(date(2035, 1, 1), date(2035, 12, 31))
    # Thanksgiving 2035 is Thursday the 22nd; the Friday after is closed too.
    assert {date(2035, 11, 22), date(2035, 11, 23), date(2035, 12, 25)} <= set(closed)
    assert date(2035, 10, 8) not in closed  # Columbus Day: the fleet works
    assert len(_business_days(closed)) == 11


@pytest.mark.parametrize(
    ("fields", "year", "expected"),
    [
        ({"fixed": "07-04", "observed": "nearest_weekday"}, 2026, date(2026, 7, 3)),  # a Sat
        ({"fixed": "07-04", "observed": "nearest_weekday"}, 2027, date(2027, 7, 5)),  # a Sun
        ({"fixed": "07-04"}, 2026, date(2026, 7, 4)),
        ({"fixed": "12-25", "observed": "next_monday"}, 2027, date(2027, 12, 27)),
        # New Year's Day 2028 is a Saturday: observed in 2027.
        ({"fixed": "01-01", "observed": "nearest_weekday"}, 2028, date(2027, 12, 31)),
        ({"fixed": "02-29"}, 2027, None),
        ({"month": 5, "weekday": "MO", "nth": -1}, 2026, date(2026, 5, 25)),
        ({"month": 11, "weekday": "TH", "nth": 4, "days_after": 1}, 2026, date(2026, 11, 27)),
        ({"month": 9, "weekday": "MO", "nth": 1}, 2030, date(2030, 9, 2)),
        ({"month": 2, "weekday": "MO", "nth": 5}, 2026, None),  # no fifth Monday
        ({"easter_offset": -2}, 2026, date(2026, 4, 3)),  # Good Friday
        ({"easter_offset": 1}, 2030, date(2030, 4, 22)),  # Easter Monday
    ],
)
def test_a_rule_s_day_in_a_year(fields: dict[str, object], year: int, expected: date) -> None:
    assert _rule(**fields).day_in(year) == expected


def test_an_observed_day_in_another_year_is_found_in_the_range() -> None:
    calendar = HolidayCalendar(
        rules=(HolidayRule(name="New Year's Day", fixed="01-01", observed="nearest_weekday"),)
    )
    assert calendar.closed_days(date(2027, 12, 1), date(2027, 12, 31)) == (date(2027, 12, 31),)


def test_listed_days_add_to_the_rules_within_the_range() -> None:
    company_day = date(2030, 8, 2)
    labor_day = HolidayRule(name="Labor Day", month=9, weekday="MO", nth=1)
    cfg = DetectorConfig(
        holiday_calendar=HolidayCalendar(rules=(labor_day,)),
        holidays=[company_day, date(2031, 8, 1)],
    )
    assert cfg.closed_days(date(2030, 8, 1), date(2030, 9, 30)) == (company_day, date(2030, 9, 2))
    assert DetectorConfig(holidays=[company_day]).closed_days(
        company_day, company_day + timedelta(days=1)
    ) == (company_day,)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give exactly one of"),
        ({"fixed": "07-04", "easter_offset": 0}, "give exactly one of"),
        ({"fixed": "13-01"}, "'13-01' is not a day of the year"),
        ({"fixed": "July 4"}, "is not a day of the year"),
        ({"month": 11, "weekday": "TH"}, "go together"),
        ({"month": 11, "weekday": "THU", "nth": 4}, "weekday 'THU' is not one of MO .. SU"),
        ({"month": 11, "weekday": "TH", "nth": 0}, "nth is 1..5"),
        ({"fixed": "07-04", "observed": "friday"}, "observed"),
    ],
)
def test_a_rule_that_names_no_day_is_refused_at_load(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _rule(**fields)


def test_a_holiday_named_twice_is_refused() -> None:
    rule = {"name": "Christmas Day", "fixed": "12-25"}
    with pytest.raises(ValidationError, match="holiday named twice: Christmas Day"):
        HolidayCalendar.model_validate({"rules": [rule, {**rule, "fixed": "12-26"}]})
