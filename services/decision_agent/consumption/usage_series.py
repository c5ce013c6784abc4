"""Score one irregular series of (timestamp, value): input rules, grid, scores per point.

Input rules (documented in the CLI help, never a crash or a silent zero):

* a point with a missing or non-finite value or timestamp is dropped (reported with reason
  ``dropped_invalid``);
* a negative value is clipped to 0 (usage counts cannot be negative; reported as clipped);
* of several points with the same timestamp the first is kept, the others are dropped
  (reason ``dropped_duplicate``);
* points are scored in time order; a point without enough earlier history gets score 0
  and reason ``not_enough_history``.

The grid step is the allowed step (one that divides a day) nearest to the median interval
of the first `CADENCE_POINTS` intervals, so later points never change it (causality); pass
`step_s` to pin it. Several points in one slot are averaged for the history of later slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.consumption.calendar import (
    SECONDS_PER_DAY,
    GridCalendar,
    from_day,
    nice_step,
)
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.robust import FloatArray
from services.decision_agent.consumption.usage_anomaly import REASON_LABELS, score_points

CADENCE_POINTS = 50
MAX_GRID_SLOTS = 20_000_000
DROPPED_INVALID = "dropped_invalid"
DROPPED_DUPLICATE = "dropped_duplicate"


class SeriesError(ValueError):
    """The series cannot be put on a grid (stated to the user, not a crash)."""


@dataclass
class CleanSeries:
    """Valid points in time order and what happened to every input row."""

    times_s: NDArray[np.int64]
    values: FloatArray
    rows: NDArray[np.int64]  # input row of each kept point
    dropped: dict[int, str] = field(default_factory=dict)  # input row -> reason
    clipped: int = 0


def clean(times_s: NDArray[np.float64], values: FloatArray, cfg: DetectorConfig) -> CleanSeries:
    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    dropped: dict[int, str] = {}
    ok = np.isfinite(times_s) & np.isfinite(values)
    dropped.update(dict.fromkeys(np.flatnonzero(~ok).tolist(), DROPPED_INVALID))
    rows = np.flatnonzero(ok)
    order = rows[np.argsort(times_s[rows], kind="stable")]
    t = times_s[order].astype(np.int64)
    duplicate = np.concatenate([[False], t[1:] == t[:-1]])
    dropped.update(dict.fromkeys(order[duplicate].tolist(), DROPPED_DUPLICATE))
    keep = order[~duplicate]
    kept_values = values[keep]
    clipped = 0
    if cfg.clip_negative:
        negative = kept_values < 0
        clipped = int(negative.sum())
        kept_values = np.where(negative, 0.0, kept_values)
    return CleanSeries(times_s[keep].astype(np.int64), kept_values, keep, dropped, clipped)


def grid_step(times_s: NDArray[np.int64]) -> int:
    gaps = np.diff(times_s[: CADENCE_POINTS + 1])
    gaps = gaps[gaps > 0]
    return nice_step(float(np.median(gaps))) if len(gaps) else 86_400


@dataclass
class SeriesScores:
    """One entry per input row (dropped rows: score NaN, reason dropped_*)."""

    score: FloatArray
    reason: list[str]
    expected: FloatArray
    clean: CleanSeries
    step_s: int


def score_series(
    times_s: NDArray[np.float64],
    values: FloatArray,
    cfg: DetectorConfig | None = None,
    step_s: int | None = None,
) -> SeriesScores:
    """Anomaly score in [0, 1] and reason for every point of a (timestamp, value) series."""
    cfg = cfg or DetectorConfig()
    n_rows = len(values)
    series = clean(times_s, values, cfg)
    score = np.full(n_rows, np.nan)
    expected = np.full(n_rows, np.nan)
    reason = [series.dropped.get(i, "") for i in range(n_rows)]
    if len(series.times_s) == 0:
        return SeriesScores(score, reason, expected, series, step_s or 86_400)
    step = step_s or grid_step(series.times_s)
    origin = int(series.times_s[0] // step * step)
    slots = (series.times_s - origin + step // 2) // step
    size = int(slots[-1]) + 1
    if size > MAX_GRID_SLOTS:
        raise SeriesError(
            f"{size} grid slots of {step}s for {len(slots)} points: too sparse; pass a longer step"
        )
    sums = np.bincount(slots, weights=series.values, minlength=size)
    counts = np.bincount(slots, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(counts > 0, sums / counts, np.nan)[None, :]
    last_slot = origin + step * (size - 1)
    holidays = cfg.closed_days(
        from_day(origin // SECONDS_PER_DAY), from_day(last_slot // SECONDS_PER_DAY)
    )
    cal = GridCalendar.build(origin, step, size, holidays, cfg.weekend_days)
    result = score_points(series.values[None, :], grid, cal, cfg, slots.astype(np.int64))
    score[series.rows] = result.score[0]
    expected[series.rows] = result.expected[0]
    for row, code in zip(series.rows.tolist(), result.reason[0].tolist(), strict=True):
        reason[row] = REASON_LABELS[code]
    return SeriesScores(score, reason, expected, series, step)
