"""Usage trend classes, month-over-month growth and monthly totals (vectorized).

Every window the analysis reads (last 30 days, the 90 before, four 30-day months) is a
difference of two prefix sums, so one cumulative sum per metric serves the analysis day and
the escalation look-back (`end` = the day after the last column of the state).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.consumption.inputs import FloatArray, IntArray, UsageArray
from services.decision_agent.consumption.rule_models import TREND_CLASSES, TrendRules

MONTH_DAYS = 30
MONTHS_KEPT = 4
CLASS_CODE = {name: code for code, name in enumerate(TREND_CLASSES)}


@dataclass(frozen=True)
class MetricTrends:
    """Arrays shaped accounts x metrics (months: accounts x metrics x 4, oldest first)."""

    trend_class: IntArray  # index into TREND_CLASSES
    ratio: FloatArray  # recent daily mean / prior daily mean
    recent_total: FloatArray  # sum of the last 30 days
    prior_monthly: FloatArray  # prior daily mean x 30
    prior_days: IntArray
    mom: FloatArray  # last 30 days / the 30 before - 1
    idle_days: IntArray  # days since the last day with usage
    months: FloatArray


def concat_trends(parts: list[MetricTrends]) -> MetricTrends:
    """Blocks of accounts, in order, as one `MetricTrends`."""
    return MetricTrends(
        **{
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(MetricTrends)
        }
    )


@dataclass(frozen=True)
class UsageHistory:
    """Prefix sums and last-use days of a block of accounts (metrics x accounts x days)."""

    cumulative: FloatArray  # metrics x accounts x (days + 1); [..., t] = sum of days < t
    last_use: NDArray[np.int16]  # metrics x accounts x days: last column <= t with usage, -1
    first_col: IntArray  # accounts: first column the account existed

    @classmethod
    def build(cls, usage: UsageArray, first_col: IntArray) -> UsageHistory:
        """`usage`: 0 before `first_col` (see `inputs.usage_matrix`)."""
        metrics, accounts, days = usage.shape

        cumulative = np.zeros((metrics, accounts, days + 1))
        np.cumsum(usage, axis=2, dtype=np.float64, out=cumulative[:, :, 1:])
        columns = np.arange(days, dtype=np.int16)
        last_use = np.where(usage > 0, columns, np.int16(-1))
        np.maximum.accumulate(last_use, axis=2, out=last_use)
        return cls(cumulative, last_use, first_col)

    def total(self, start: int, end: int) -> FloatArray:
        """accounts x metrics: sum of columns start..end-1 (start clipped at 0)."""
        start = max(start, 0)
        return (self.cumulative[:, :, end] - self.cumulative[:, :, start]).T

    def days(self, start: int, end: int) -> IntArray:
        """accounts: days of start..end-1 on which the account existed."""
        return np.clip(end - np.maximum(max(start, 0), self.first_col), 0, None)


def _mean(total: FloatArray, days: IntArray) -> FloatArray:
    return np.where(days > 0, total / np.maximum(days, 1), 0.0)


def metric_trends(history: UsageHistory, end: int, rules: TrendRules) -> MetricTrends:
    """Trends of every metric of `history` as seen on column `end - 1`."""
    recent_start = end - rules.recent_days
    prior_start = recent_start - rules.prior_days
    recent_total = history.total(recent_start, end)
    prior_total = history.total(prior_start, recent_start)
    recent_days = history.days(recent_start, end)[:, None]
    prior_days = np.broadcast_to(
        history.days(prior_start, recent_start)[:, None], prior_total.shape
    ).astype(np.int64)
    recent_mean = _mean(recent_total, recent_days)
    prior_mean = _mean(prior_total, prior_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(
            prior_mean > 0, recent_mean / prior_mean, np.where(recent_mean > 0, np.inf, np.nan)
        )
    last_use = history.last_use[:, :, end - 1].T.astype(np.int64)
    existing = history.days(0, end)[:, None]
    idle = np.where(last_use >= 0, end - 1 - last_use, existing)

    inactive = idle >= rules.idle_days
    conditions = [
        inactive & (recent_total == 0) & (prior_total > 0),
        inactive,
        prior_days < rules.min_prior_days,
        ratio < rules.major_decline_below,
        ratio < rules.declining_below,
        ratio > rules.spike_above,
        ratio > rules.growing_above,
    ]
    names = ["Complete stop", "Inactive", "New", "Major decline", "Declining", "Spike", "Growing"]
    trend_class = np.select(
        conditions, [CLASS_CODE[n] for n in names], default=CLASS_CODE["Stable"]
    ).astype(np.int64)

    bounds = [end - MONTH_DAYS * k for k in range(MONTHS_KEPT, -1, -1)]
    months = np.stack([history.total(a, b) for a, b in pairwise(bounds)], axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mom = np.where(months[..., -2] > 0, months[..., -1] / months[..., -2] - 1, np.nan)
    return MetricTrends(
        trend_class, ratio, recent_total, prior_mean * MONTH_DAYS, prior_days, mom, idle, months
    )


def growth_streak(months: FloatArray, min_growth: float) -> IntArray:
    """How many of the latest month-over-month steps in a row grew by more than min_growth."""
    grew = (months[..., :-1] > 0) & (months[..., 1:] > months[..., :-1] * (1 + min_growth))
    streak = np.zeros(grew.shape[:-1], dtype=np.int64)
    alive = np.ones(grew.shape[:-1], dtype=np.bool_)
    for step in range(grew.shape[-1] - 1, -1, -1):  # 3 steps, not a loop over accounts
        alive &= grew[..., step]
        streak += alive
    return streak
