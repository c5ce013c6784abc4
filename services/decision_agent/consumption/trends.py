"""Usage trend classes, month-over-month growth and monthly totals (vectorized)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.decision_agent.consumption.inputs import FloatArray, IntArray
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


def _mean(block: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    days = np.sum(~np.isnan(block), axis=1)
    total = np.nansum(block, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total, np.where(days > 0, total / np.maximum(days, 1), 0.0), days


def metric_trends(usage: FloatArray, rules: TrendRules) -> MetricTrends:
    """`usage`: accounts x days x metrics (NaN = before the account existed)."""
    n_days = usage.shape[1]
    recent = usage[:, n_days - rules.recent_days :]
    prior = usage[
        :, max(0, n_days - rules.recent_days - rules.prior_days) : n_days - rules.recent_days
    ]
    recent_total, recent_mean, _ = _mean(recent)
    prior_total, prior_mean, prior_days = _mean(prior)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(
            prior_mean > 0, recent_mean / prior_mean, np.where(recent_mean > 0, np.inf, np.nan)
        )
    used = np.nan_to_num(usage) > 0
    any_use = used.any(axis=1)
    last_use = n_days - 1 - np.argmax(used[:, ::-1], axis=1)
    existing = np.sum(~np.isnan(usage), axis=1)
    idle = np.where(any_use, n_days - 1 - last_use, existing)

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

    tail = np.nan_to_num(usage[:, n_days - MONTHS_KEPT * MONTH_DAYS :])
    months = tail.reshape(usage.shape[0], MONTHS_KEPT, MONTH_DAYS, usage.shape[2]).sum(axis=2)
    months = np.moveaxis(months, 1, 2)
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
