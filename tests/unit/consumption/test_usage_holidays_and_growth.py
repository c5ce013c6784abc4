"""Quiet holidays, holidays worked as business days, growing series and a customer's own
weekly rhythm do not alarm."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from services.decision_agent.consumption.calendar import (
    SECONDS_PER_DAY,
    GridCalendar,
    day_number,
    shared_daily_calendar,
)
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.holiday_calendar import HolidayCalendar, HolidayRule
from services.decision_agent.consumption.usage_series import score_series

US_CALENDAR = HolidayCalendar(
    rules=(HolidayRule(name="Thanksgiving Day", month=11, weekday="TH", nth=4),)
)
START = date(2025, 1, 6)  # a Monday
DAYS = 140


def _times() -> np.ndarray:
    return np.array(
        [day_number(START + timedelta(k)) * SECONDS_PER_DAY for k in range(DAYS)], float
    )


def _weekly(seed: int, weekend: float = 0.6, noise: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weekday = (np.arange(DAYS) + START.weekday()) % 7
    return 1000 * np.where(weekday >= 5, weekend, 1.0) * rng.lognormal(0, noise, DAYS)


def test_a_quiet_holiday_is_no_alarm_but_a_busy_one_is() -> None:
    holiday = START + timedelta(days=100)  # a Wednesday
    k = 100
    values = _weekly(1)
    values[k] = 100.0  # 10% of a weekday, far below the customer's weekends
    cfg = DetectorConfig(holidays=[holiday])
    assert score_series(_times(), values, cfg).score[k] == 0
    assert (
        score_series(_times(), values, cfg.model_copy(update={"holiday_drops": True})).score[k]
        >= cfg.alert_score
    )
    values[k] = 8000.0  # a spike is news on any day
    assert score_series(_times(), values, cfg).score[k] >= cfg.alert_score


def test_a_holiday_worked_as_any_business_day_is_no_alarm() -> None:
    # The calendar is the fleet's: a customer who works through a listed holiday (a public
    # holiday abroad, a company that does not close) looks like a business day, not a spike
    # against its weekends. Weekend level 0.3 of a weekday: 1000 is 3.3x the off-day level.
    k = 100  # a Wednesday
    values = _weekly(4, weekend=0.3)
    values[k] = 1000.0
    cfg = DetectorConfig(holidays=[START + timedelta(days=k)])
    scores = score_series(_times(), values, cfg)
    assert scores.score[k] < cfg.alert_score
    assert scores.reason[k] == "none"
    # The same day not listed as a holiday: a normal Wednesday, no alarm either.
    assert score_series(_times(), values, DetectorConfig()).score[k] < cfg.alert_score


def test_a_weekday_that_looks_like_a_weekend_still_alarms_when_it_is_no_holiday() -> None:
    k = 100  # a Wednesday at the customer's weekend level
    values = _weekly(5, weekend=0.3)
    values[k] = 300.0
    scores = score_series(_times(), values, DetectorConfig())
    assert scores.score[k] >= DetectorConfig().alert_score
    assert scores.reason[k] == "seasonal_deviation"


def test_healthy_growth_is_carried_forward() -> None:
    growth = 1.5 ** (np.arange(DAYS) / 30)  # +50% a month, the top of docs/domain.md §4's norm
    alerts = {}
    for cap in (0.0, 0.5):
        cfg = DetectorConfig(alert_score=0.6, max_growth_per_month=cap)
        alerts[cap] = sum(
            int(
                np.sum(np.nan_to_num(score_series(_times(), _weekly(s) * growth, cfg).score) >= 0.6)
            )
            for s in range(10)
        )
    assert alerts[0.5] < alerts[0.0]
    assert alerts[0.5] <= 2  # 10 series x 140 days


def test_growth_never_hides_a_drop() -> None:
    growth = 1.5 ** (np.arange(DAYS) / 30)
    values = _weekly(3) * growth
    values[120:] *= 0.3
    cfg = DetectorConfig(alert_score=0.6, max_growth_per_month=0.5)
    assert score_series(_times(), values, cfg).score[120] >= 0.6


def test_an_analysis_past_the_last_listed_holiday_says_so_once_without_a_calendar() -> None:
    from structlog.testing import capture_logs

    from services.decision_agent.consumption import pipeline

    cfg = DetectorConfig(holidays=[date(2031, 12, 25), date(2031, 1, 1)])
    pipeline._CALENDARS_RUN_PAST.discard(date(2031, 12, 25))
    with capture_logs() as logs:
        pipeline._warn_past_the_holiday_list(cfg, day_number(date(2031, 12, 25)))
        assert logs == []  # on the last listed day: still covered
        for _ in range(2):
            pipeline._warn_past_the_holiday_list(cfg, day_number(date(2032, 1, 2)))
        pipeline._warn_past_the_holiday_list(DetectorConfig(), day_number(date(2032, 1, 2)))
        # With a calendar the list holds a company's extra days: it has no end to run past.
        with_calendar = cfg.model_copy(update={"holiday_calendar": US_CALENDAR})
        pipeline._warn_past_the_holiday_list(with_calendar, day_number(date(2033, 1, 2)))
    assert [(e["event"], e["last_listed_holiday"]) for e in logs] == [
        ("holiday_calendar_ended", "2031-12-25")
    ]


def test_a_shared_calendar_is_the_built_one_kept_read_only() -> None:
    holidays = (START + timedelta(days=100), START + timedelta(days=3))
    first = day_number(START)
    built = GridCalendar.build(first * SECONDS_PER_DAY, SECONDS_PER_DAY, DAYS, holidays)
    shared = shared_daily_calendar(first, DAYS, holidays, (5, 6))
    for name in ("weekday", "holiday", "offday"):
        assert np.array_equal(getattr(shared, name), getattr(built, name))
    assert shared.holiday.sum() == 2 and shared.offday[100]
    assert shared_daily_calendar(first, DAYS, holidays, (5, 6)) is shared
    assert shared_daily_calendar(first, DAYS - 1, holidays, (5, 6)) is not shared
    with pytest.raises(ValueError, match="read-only"):
        shared.holiday[0] = True  # one caller cannot change another's calendar
