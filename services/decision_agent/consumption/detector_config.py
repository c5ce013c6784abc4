"""Settings of the anomaly detector (defaults documented; embeddable in rule files)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.decision_agent.consumption.holiday_calendar import HolidayCalendar


class DetectorConfig(BaseModel):
    """Every knob of :func:`score_series` / :func:`score_grid`.

    Severity knots follow docs/domain.md §4: a stop scores 1.0, a drop below 0.3x 0.9,
    a spike above 3x 0.8, a deviation above 50% 0.6; scores between knots are linear so the
    score is a continuous function of the value (no jumps at thresholds).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    level_window_days: float = Field(28, gt=0, description="History of the level model.")
    max_level_points: int = Field(256, ge=4, description="Cap on the level window (points).")
    level_min_points: int = Field(7, ge=2, description="Fewer valid points: no level model.")
    daytype_days: int = Field(28, ge=2, description="Days searched for same day-type points.")
    weekly_weeks: int = Field(8, ge=2, description="Same weekday/time over this many weeks.")
    seasonal_min_points: int = Field(2, ge=2, description="Fewer samples: model unavailable.")
    parsimony: float = Field(
        0.8, gt=0, le=1, description="A seasonal model wins only if its spread < this x level's."
    )
    rel_scale_floor: float = Field(
        0.05, ge=0, description="Spread never below this share of the baseline."
    )
    z_min: float = Field(2.0, ge=0, description="Robust z below this: not significant.")
    z_full: float = Field(4.0, gt=0, description="Robust z above this: fully significant.")
    drop_knots: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 1.0), (0.3, 0.9), (0.5, 0.6), (1.0, 0.0)],
        description="(value/baseline, severity) for values below the baseline.",
    )
    spike_knots: list[tuple[float, float]] = Field(
        default_factory=lambda: [(1.0, 0.0), (1.5, 0.6), (3.0, 0.8), (10.0, 0.9)],
        description="(value/baseline, severity) for values above the baseline.",
    )
    stop_ratio: float = Field(0.05, ge=0, description="value/baseline at or below: a stop.")
    alert_score: float = Field(0.5, gt=0, le=1, description="Score from which a reason is given.")
    shift_run: int = Field(3, ge=2, description="This many same-direction alerts: level_shift.")
    weekend_days: list[int] = Field(default_factory=lambda: [5, 6], description="Mon=0..Sun=6")
    holidays: list[date] = Field(
        default_factory=list,
        description="Days treated as off-days, beside the holiday rules' (a company's own).",
    )
    holiday_calendar: HolidayCalendar | None = Field(
        None, description="Holiday rules whose days are off-days, for any year."
    )
    max_growth_per_month: float = Field(
        0.0,
        ge=0,
        description="Carry the expectations forward by the series' own upward trend, up to "
        "this growth a month (0 = off). Medians of past weeks lag a growing series; without "
        "this, healthy growth (docs/domain.md §4: up to 50% a month) reads as a run of spikes.",
    )
    holiday_drops: bool = Field(
        False,
        description="Alert on values below the expectation on a holiday. Off by default: how "
        "quiet a customer is on a public holiday is its own business (often far below a "
        "weekend), and a real stop shows again on the next working day.",
    )
    clip_negative: bool = Field(True, description="Negative values are clipped to 0.")

    def closed_days(self, first: date, last: date) -> tuple[date, ...]:
        """The holidays from `first` to `last` (both included): the calendar's and the listed."""
        days = set(self.holiday_calendar.closed_days(first, last) if self.holiday_calendar else ())
        days.update(d for d in self.holidays if first <= d <= last)
        return tuple(sorted(days))
