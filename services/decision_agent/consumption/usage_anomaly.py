"""The causal, seasonal, robust anomaly scorer on a regular grid (rows x slots).

For every scored slot three baselines are built from strictly earlier slots only:

* ``level``   - median of the last `level_window_days` (holidays left out);
* ``daytype`` - median of the same time of day on the same kind of day (business day vs
  off-day = weekend or holiday) over the last `daytype_days`;
* ``weekly``  - median of the same weekday and time over the last `weekly_weeks` weeks.

For alerting points the other day-type's median is computed as well: it tells a seasonal
deviation (a weekday that looks like an off-day) from a real drop.

Three rules keep ordinary days quiet (found against the data agent's seeded warehouse):
* a value normal for its own kind of day is no anomaly, whichever model predicted best;
* with `max_growth_per_month`, medians (which describe the middle of their weeks) are
  carried forward by the series' own upward trend, so healthy growth is not a run of spikes;
* a value below its expectation on a holiday is no alarm unless `holiday_drops`.

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

from services.decision_agent.consumption.calendar import SECONDS_PER_DAY, GridCalendar
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.robust import FloatArray, row_median, row_stats

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
    """Per (row, query slot): the chosen expectation and its spread."""

    expected: FloatArray
    spread: FloatArray
    model: NDArray[np.int8]
    growth: FloatArray  # upward trend per slot the expectations were carried forward by
    own_type: FloatArray  # the same kind of day's expectation (NaN: unknown), and spread
    own_type_spread: FloatArray


@dataclass(frozen=True)
class Scores:
    score: FloatArray  # [0, 1]; NaN where there is no value
    reason: NDArray[np.int8]  # Reason codes
    expected: FloatArray
    model: NDArray[np.int8]


def _padded(history: FloatArray) -> FloatArray:
    """`history` with one NaN column appended: index -1 then reads as missing."""
    return np.concatenate([history, np.full((history.shape[0], 1), np.nan, history.dtype)], axis=1)


def _level_offsets(cal: GridCalendar, cfg: DetectorConfig) -> NDArray[np.int64]:
    window = round(cfg.level_window_days * SECONDS_PER_DAY / cal.step_s)
    window = int(min(cfg.max_level_points, max(window, cfg.level_min_points)))
    return np.arange(1, window + 1, dtype=np.int64)


def _compact(index: NDArray[np.int64]) -> NDArray[np.int64]:
    """Rows of slot indexes with -1 (missing) moved to the end and all-missing columns cut:
    the same samples per row (medians do not depend on order), fewer values to sort."""
    order = np.argsort(index < 0, axis=1, kind="stable")
    index = np.take_along_axis(index, order, axis=1)
    width = int(np.max(np.sum(index >= 0, axis=1), initial=0))
    return index[:, : max(width, 1)]


def _daytype_index(
    cal: GridCalendar, cfg: DetectorConfig, slots: NDArray[np.int64], same: bool
) -> NDArray[np.int64]:
    """slots x samples: earlier slots at the same time of day over `daytype_days`, on the
    same kind of day (business day vs off-day) as the slot, or on the other kind."""
    days = np.arange(1, cfg.daytype_days + 1, dtype=np.int64) * cal.slots_per_day
    idx = slots[:, None] - days[None, :]
    same_type = cal.offday[np.clip(idx, 0, None)] == cal.offday[slots][:, None]
    return _compact(np.where((same_type == same) & (idx >= 0), idx, -1))


def _floored(spread: FloatArray, center: FloatArray, cfg: DetectorConfig) -> FloatArray:
    return np.maximum(spread, cfg.rel_scale_floor * np.abs(center))


def _growth_per_slot(window: FloatArray, cal: GridCalendar, cfg: DetectorConfig) -> FloatArray:
    """Upward trend per slot seen in the level window (1 = none): the median of its recent
    half over the median of its older half (two whole weeks each for daily data, so weekday
    mix cancels), capped at `max_growth_per_month`. Only growth is carried forward: a fall
    is what the detector must see, not explain away."""
    if cfg.max_growth_per_month <= 0:
        return np.ones(window.shape[:-1])
    half = window.shape[-1] // 2
    recent, n_recent = row_median(window[..., :half])
    old, n_old = row_median(window[..., half : 2 * half])
    enough = (n_recent * 2 >= half) & (n_old * 2 >= half) & (old > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(enough, recent / np.where(enough, old, 1.0), 1.0)
    cap = (1 + cfg.max_growth_per_month) ** (half * cal.step_s / (30 * SECONDS_PER_DAY))
    return np.asarray(np.clip(ratio, 1.0, cap) ** (1.0 / half), dtype=np.float64)


def _block_baselines(
    values: FloatArray,
    history: FloatArray,
    cal: GridCalendar,
    cfg: DetectorConfig,
    slots: NDArray[np.int64],
) -> Baselines:
    """`values` and `history` carry the NaN pad column of `_padded`."""
    offsets = _level_offsets(cal, cfg)
    level_idx = slots[:, None] - offsets[None, :]
    window = np.take(history, np.where(level_idx < 0, -1, level_idx), axis=1)
    growth = _growth_per_slot(window, cal, cfg)
    # Each median describes the middle of its samples: carried forward by the trend.
    level = row_stats(window)
    level_median = level.median * growth ** ((len(offsets) + 1) / 2)
    level_sig = _floored(level.spread * growth ** ((len(offsets) + 1) / 2), level_median, cfg)
    # Every model needs `level_min_points` of recent history: no verdict from 2 samples.
    enough_history = level.valid >= cfg.level_min_points
    inf = np.full(level.median.shape, np.inf)
    keys = [np.where(enough_history, level_sig, inf)]
    medians = [level_median]
    spreads = [level_sig]
    holiday_now = cal.holiday[slots][None, :]
    per_day = cal.slots_per_day
    if per_day:
        daytype = row_stats(np.take(values, _daytype_index(cal, cfg, slots, same=True), axis=1))
        weeks = np.arange(1, cfg.weekly_weeks + 1, dtype=np.int64) * 7 * per_day
        weekly_idx = slots[:, None] - weeks[None, :]
        weekly = row_stats(np.take(history, np.where(weekly_idx < 0, -1, weekly_idx), axis=1))
        lags = (_daytype_lag(cal, cfg), 7 * per_day * (cfg.weekly_weeks + 1) / 2)
        for stats, lag in zip((daytype, weekly), lags, strict=True):
            carried = growth**lag
            median = stats.median * carried
            sig = _floored(stats.spread * carried, median, cfg)
            ok = enough_history & (stats.valid >= cfg.seasonal_min_points)
            keys.append(np.where(ok, sig / cfg.parsimony, inf))
            medians.append(median)
            spreads.append(sig)
        own_ok = enough_history & (daytype.valid >= cfg.seasonal_min_points)
        own_type = np.where(own_ok, medians[Model.DAYTYPE], np.nan)
        own_type_spread = np.where(own_ok, spreads[Model.DAYTYPE], np.nan)
        keys[Model.WEEKLY] = np.where(holiday_now, inf, keys[Model.WEEKLY])
        # On a holiday the customer's own off-days are the expectation, when known.
        keys[Model.DAYTYPE] = np.where(
            holiday_now & np.isfinite(keys[Model.DAYTYPE]), -1.0, keys[Model.DAYTYPE]
        )
    else:
        own_type = own_type_spread = np.full(level.median.shape, np.nan)
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
        growth,
        own_type,
        own_type_spread,
    )


def _daytype_lag(cal: GridCalendar, cfg: DetectorConfig) -> float:
    return cal.slots_per_day * (cfg.daytype_days + 1) / 2


def _history(values: FloatArray, cal: GridCalendar) -> FloatArray:
    history = values.copy()
    history[:, cal.holiday] = np.nan  # holidays never shape a business-day expectation
    return history


def baselines(
    values: FloatArray, cal: GridCalendar, cfg: DetectorConfig, slots: NDArray[np.int64]
) -> Baselines:
    """Baselines at `slots` (each row of `values` is one series on `cal`)."""
    width = len(_level_offsets(cal, cfg)) + cfg.daytype_days + cfg.weekly_weeks
    rows_per_block = max(1, BLOCK_ELEMENTS // max(1, width * max(1, len(slots))))
    slots_per_block = max(1, BLOCK_ELEMENTS // width) if rows_per_block == 1 else len(slots)
    parts: list[list[Baselines]] = []
    for r0 in range(0, values.shape[0], rows_per_block):
        block = values[r0 : r0 + rows_per_block]
        padded, history = _padded(block), _padded(_history(block, cal))
        row_parts = []
        for s0 in range(0, max(1, len(slots)), slots_per_block):
            sl = slots[s0 : s0 + slots_per_block]
            row_parts.append(_block_baselines(padded, history, cal, cfg, sl))
        parts.append(row_parts)
    merged = {
        f: np.concatenate(
            [np.concatenate([getattr(b, f) for b in row], axis=1) for row in parts], axis=0
        )
        for f in ("expected", "spread", "model", "growth", "own_type", "own_type_spread")
    }
    return Baselines(**merged)


def other_daytype(
    grid: FloatArray,
    cal: GridCalendar,
    cfg: DetectorConfig,
    rows: NDArray[np.int64],
    slots: NDArray[np.int64],
    growth: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Median and floored spread of the *other* kind of day (weekday vs off-day) at the
    same time of day, for the (row, slot) pairs given (carried forward by their `growth`
    per slot, like the other baselines); NaN where too few samples."""
    if not cal.slots_per_day or len(rows) == 0:
        nan = np.full(len(rows), np.nan)
        return nan, nan
    unique_slots, slot_of = np.unique(slots, return_inverse=True)
    index = _daytype_index(cal, cfg, unique_slots, same=False)[slot_of]
    samples = np.where(index >= 0, grid[rows[:, None], np.maximum(index, 0)], np.nan)
    other = row_stats(samples)
    carried = growth ** _daytype_lag(cal, cfg)
    median = np.where(other.valid >= cfg.seasonal_min_points, other.median * carried, np.nan)
    return median, _floored(other.spread * carried, other.median * carried, cfg)


def severity(ratio: FloatArray, cfg: DetectorConfig) -> FloatArray:
    """Continuous severity of value/baseline from the knots of docs/domain.md §4."""
    drop_x, drop_y = np.array(cfg.drop_knots, dtype=np.float64).T
    spike_x, spike_y = np.array(cfg.spike_knots, dtype=np.float64).T
    low = np.interp(ratio, drop_x, drop_y)
    high = np.interp(np.where(np.isnan(ratio), 1.0, ratio), spike_x, spike_y)
    return np.where(ratio < 1.0, low, high)


def _significance(
    value: FloatArray, center: FloatArray, spread: FloatArray, cfg: DetectorConfig
) -> FloatArray:
    deviation = np.abs(value - center)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = np.where(deviation > 0, deviation / spread, 0.0)
    return np.clip((z - cfg.z_min) / (cfg.z_full - cfg.z_min), 0.0, 1.0)


def _ratio(value: FloatArray, center: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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
    # A value normal for its own kind of day (business day or off-day) is no anomaly, even
    # when a model blind to the weekly rhythm (the level) was the better predictor overall.
    own_type_score = _score(values, base.own_type, base.own_type_spread, cfg)
    score = np.where(np.isnan(base.own_type), score, np.minimum(score, own_type_score))
    if not cfg.holiday_drops:  # a quiet holiday is no alarm (see DetectorConfig)
        quiet_holiday = cal.holiday[slots][None, :] & (values < base.expected)
        score = np.where(quiet_holiday, 0.0, score)
    score = np.where(valid_value, score, np.nan)
    alert = valid_value & has_model & (score >= cfg.alert_score)
    # A value that would be normal on the other kind of day (a weekday that looks like a
    # weekend, a busy Sunday) is a seasonal deviation rather than a drop or a spike. Only
    # alerting points need the other day-type's statistics.
    rows, points = np.nonzero(alert & (base.model != Model.LEVEL))
    other, other_spread = other_daytype(
        grid, cal, cfg, rows, slots[points], base.growth[rows, points]
    )
    other_score = _score(values[rows, points], other, other_spread, cfg)
    seasonal_only = np.zeros(values.shape, dtype=np.bool_)
    seasonal_only[rows, points] = other_score < cfg.alert_score
    # A holiday may look like either kind of day: the calendar is the fleet's, and a customer
    # who works through it as on any business day shows no anomaly (else every account that
    # worked on a listed holiday "spiked" against its weekend level).
    worked = cal.holiday[slots[points]] & (other_score < cfg.alert_score)
    score[rows[worked], points[worked]] = other_score[worked]
    alert[rows[worked], points[worked]] = False
    down = alert & (values < base.expected)
    up = alert & (values > base.expected)
    valid = valid_value & has_model
    shifted = (_runs(down, valid) >= cfg.shift_run) | (_runs(up, valid) >= cfg.shift_run)
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
