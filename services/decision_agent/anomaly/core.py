"""The causal, seasonal, robust anomaly scorer on a regular grid (rows x slots).

For every scored slot three baselines are built from strictly earlier slots only:

* ``level``   - median of the last `level_window_days` (holidays left out);
* ``daytype`` - median of the same time of day on the same kind of day (business day vs
  off-day = weekend or holiday) over the last `daytype_days`;
* ``weekly``  - median of the same weekday and time over the last `weekly_weeks` weeks.

The other day-type's median is kept as well: it tells a seasonal deviation (a weekday that
looks like an off-day) from a real drop.

Seasonality is detected in the data itself: a seasonal baseline is used only when the
spread of its samples (IQR/1.349) is below `parsimony` x the spread of the level window,
i.e. when knowing the weekday or day-type actually makes the value more predictable. A
holiday is expected to look like the customer's own off-days (daytype baseline).

The score is `severity(value / baseline) x significance(robust z)`, both in [0, 1]; both
are scale free, so multiplying a series by a constant does not change any score.
Everything is numpy over whole blocks of rows and slots; the only loop is over memory
blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.anomaly.calendar import SECONDS_PER_DAY, GridCalendar
from services.decision_agent.anomaly.config import DetectorConfig
from services.decision_agent.anomaly.robust import FloatArray, row_stats

BLOCK_ELEMENTS = 4_000_000  # gathered floats per block (~32 MB)


class Reason(IntEnum):
    NONE = 0
    DROP = 1
    SPIKE = 2
    STOP = 3
    LEVEL_SHIFT = 4
    SEASONAL_DEVIATION = 5
    NOT_ENOUGH_HISTORY = 6
    MISSING = 7  # no value in this slot (rows x slots input only)

    @property
    def label(self) -> str:
        return self.name.lower()


REASON_LABELS: tuple[str, ...] = tuple(r.label for r in Reason)


class Model(IntEnum):
    NONE = -1
    LEVEL = 0
    DAYTYPE = 1
    WEEKLY = 2


@dataclass(frozen=True)
class Baselines:
    """Per (row, query slot): the chosen expectation and the level reference."""

    expected: FloatArray
    spread: FloatArray
    model: NDArray[np.int8]
    other: FloatArray  # the other day-type's expectation (weekday vs off-day)
    other_spread: FloatArray


@dataclass(frozen=True)
class Scores:
    score: FloatArray  # [0, 1]; NaN where there is no value
    reason: NDArray[np.int8]  # Reason codes
    expected: FloatArray
    model: NDArray[np.int8]


def _gather(history: FloatArray, index: NDArray[np.int64]) -> FloatArray:
    """history[:, index] with negative indexes reading as missing (NaN)."""
    padded = np.concatenate([history, np.full((history.shape[0], 1), np.nan)], axis=1)
    safe = np.where(index < 0, history.shape[1], index)
    return padded[:, safe]


def _level_offsets(cal: GridCalendar, cfg: DetectorConfig) -> NDArray[np.int64]:
    window = round(cfg.level_window_days * SECONDS_PER_DAY / cal.step_s)
    window = int(min(cfg.max_level_points, max(window, cfg.level_min_points)))
    return np.arange(1, window + 1, dtype=np.int64)


def _floored(spread: FloatArray, center: FloatArray, cfg: DetectorConfig) -> FloatArray:
    return np.maximum(spread, cfg.rel_scale_floor * np.abs(center))


def _block_baselines(
    values: FloatArray,
    history: FloatArray,
    cal: GridCalendar,
    cfg: DetectorConfig,
    slots: NDArray[np.int64],
) -> Baselines:
    level = row_stats(_gather(history, slots[:, None] - _level_offsets(cal, cfg)[None, :]))
    level_sig = _floored(level.spread, level.median, cfg)
    # Every model needs `level_min_points` of recent history: no verdict from 2 samples.
    enough_history = level.valid >= cfg.level_min_points
    inf = np.full(level.median.shape, np.inf)
    keys = [np.where(enough_history, level_sig, inf)]
    medians = [level.median]
    spreads = [level_sig]
    holiday_now = cal.holiday[slots][None, :]
    per_day = cal.slots_per_day
    if per_day:
        offday = cal.offday
        days = np.arange(1, cfg.daytype_days + 1, dtype=np.int64) * per_day
        idx = slots[:, None] - days[None, :]
        same_type = offday[np.clip(idx, 0, None)] == offday[slots][:, None]
        daytype = row_stats(_gather(values, np.where(same_type, idx, -1)))
        other = row_stats(_gather(values, np.where(same_type, -1, idx)))
        other_median = np.where(other.valid >= cfg.seasonal_min_points, other.median, np.nan)
        other_sig = _floored(other.spread, other.median, cfg)
        weeks = np.arange(1, cfg.weekly_weeks + 1, dtype=np.int64) * 7 * per_day
        weekly = row_stats(_gather(history, slots[:, None] - weeks[None, :]))
        for stats in (daytype, weekly):
            sig = _floored(stats.spread, stats.median, cfg)
            ok = enough_history & (stats.valid >= cfg.seasonal_min_points)
            keys.append(np.where(ok, sig / cfg.parsimony, inf))
            medians.append(stats.median)
            spreads.append(sig)
        keys[Model.WEEKLY] = np.where(holiday_now, inf, keys[Model.WEEKLY])
        # On a holiday the customer's own off-days are the expectation, when known.
        keys[Model.DAYTYPE] = np.where(
            holiday_now & np.isfinite(keys[Model.DAYTYPE]), -1.0, keys[Model.DAYTYPE]
        )
    else:
        other_median = other_sig = np.full(level.median.shape, np.nan)
    stacked = np.stack(keys)
    choice = np.argmin(stacked, axis=0)
    available = np.isfinite(np.take_along_axis(stacked, choice[None], axis=0)[0])
    expected = np.take_along_axis(np.stack(medians), choice[None], axis=0)[0]
    spread = np.take_along_axis(np.stack(spreads), choice[None], axis=0)[0]
    model = np.where(available, choice, Model.NONE).astype(np.int8)
    return Baselines(
        np.where(available, expected, np.nan),
        np.where(available, spread, np.nan),
        model,
        other_median,
        other_sig,
    )


def baselines(
    values: FloatArray, cal: GridCalendar, cfg: DetectorConfig, slots: NDArray[np.int64]
) -> Baselines:
    """Baselines at `slots` (each row of `values` is one series on `cal`)."""
    history = values.copy()
    history[:, cal.holiday] = np.nan  # holidays never shape a business-day expectation
    width = len(_level_offsets(cal, cfg)) + 3 * cfg.daytype_days + cfg.weekly_weeks
    rows_per_block = max(1, BLOCK_ELEMENTS // max(1, width * max(1, len(slots))))
    slots_per_block = max(1, BLOCK_ELEMENTS // width) if rows_per_block == 1 else len(slots)
    parts: list[list[Baselines]] = []
    for r0 in range(0, values.shape[0], rows_per_block):
        row_parts = []
        for s0 in range(0, max(1, len(slots)), slots_per_block):
            sl = slots[s0 : s0 + slots_per_block]
            rows = slice(r0, r0 + rows_per_block)
            row_parts.append(_block_baselines(values[rows], history[rows], cal, cfg, sl))
        parts.append(row_parts)
    fields = ("expected", "spread", "model", "other", "other_spread")
    merged = {
        f: np.concatenate(
            [np.concatenate([getattr(b, f) for b in row], axis=1) for row in parts], axis=0
        )
        for f in fields
    }
    return Baselines(**merged)


def severity(ratio: FloatArray, cfg: DetectorConfig) -> FloatArray:
    """Continuous severity of value/baseline from the DOMAIN.md knots."""
    drop_x, drop_y = np.array(cfg.drop_knots, dtype=np.float64).T
    spike_x, spike_y = np.array(cfg.spike_knots, dtype=np.float64).T
    low = np.interp(ratio, drop_x, drop_y)
    high = np.interp(np.where(np.isnan(ratio), 1.0, ratio), spike_x, spike_y)
    return np.where(ratio < 1.0, low, high)


def _significance(
    value: FloatArray, center: FloatArray, spread: FloatArray, cfg: DetectorConfig
) -> FloatArray:
    deviation = np.abs(value - center)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(deviation > 0, deviation / spread, 0.0)
    return np.clip((z - cfg.z_min) / (cfg.z_full - cfg.z_min), 0.0, 1.0)


def _ratio(value: FloatArray, center: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(center > 0, value / center, np.where(value > 0, np.inf, 1.0))


def _score(
    value: FloatArray, center: FloatArray, spread: FloatArray, cfg: DetectorConfig
) -> FloatArray:
    ratio = _ratio(value, center)
    return severity(ratio, cfg) * _significance(value, center, spread, cfg)


def _runs(flag: NDArray[np.bool_], valid: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Length of the current run of `flag` along the last axis, skipping invalid points."""
    position = np.cumsum(valid, axis=-1)
    resets = np.where(valid & ~flag, position, 0)
    last_reset = np.maximum.accumulate(resets, axis=-1)
    return np.where(flag & valid, position - last_reset, 0)


def score_points(
    values: FloatArray,
    grid: FloatArray,
    cal: GridCalendar,
    cfg: DetectorConfig,
    slots: NDArray[np.int64],
) -> Scores:
    """Score `values` (rows x points) observed in `slots` (points, ascending) of `grid`."""
    base = baselines(grid, cal, cfg, slots)
    valid_value = ~np.isnan(values)
    has_model = base.model != Model.NONE
    score = np.where(has_model, _score(values, base.expected, base.spread, cfg), 0.0)
    score = np.where(valid_value, score, np.nan)
    alert = valid_value & has_model & (score >= cfg.alert_score)
    down = alert & (values < base.expected)
    up = alert & (values > base.expected)
    valid = valid_value & has_model
    shifted = (_runs(down, valid) >= cfg.shift_run) | (_runs(up, valid) >= cfg.shift_run)
    # A value that would be normal on the other kind of day (a weekday that looks like a
    # weekend, a busy Sunday) is a seasonal deviation rather than a drop or a spike.
    other_score = _score(values, base.other, base.other_spread, cfg)
    seasonal_only = (base.model != Model.LEVEL) & (other_score < cfg.alert_score)
    stop = down & (_ratio(values, base.expected) <= cfg.stop_ratio)

    reason = np.full(values.shape, Reason.NONE, dtype=np.int8)
    reason[up] = Reason.SPIKE
    reason[down] = Reason.DROP
    reason[alert & seasonal_only] = Reason.SEASONAL_DEVIATION
    reason[alert & shifted] = Reason.LEVEL_SHIFT
    reason[stop] = Reason.STOP
    reason[valid_value & ~has_model] = Reason.NOT_ENOUGH_HISTORY
    reason[~valid_value] = Reason.MISSING
    return Scores(score, reason, base.expected, base.model)


def score_grid(grid: FloatArray, cal: GridCalendar, cfg: DetectorConfig, start: int = 0) -> Scores:
    """Score slots `start..end` of every row (NaN = no value in that slot).

    A few slots before `start` are scored as well, so the level_shift run (which looks back
    `shift_run - 1` points) is the same as when the whole series is scored (exact for rows
    without empty slots, like daily usage).
    """
    first = max(0, start - (cfg.shift_run - 1))
    slots = np.arange(first, grid.shape[1], dtype=np.int64)
    scores = score_points(grid[:, slots], grid, cal, cfg, slots)
    cut = start - first
    return Scores(
        scores.score[:, cut:],
        scores.reason[:, cut:],
        scores.expected[:, cut:],
        scores.model[:, cut:],
    )
