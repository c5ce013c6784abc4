"""The general streaming anomaly detector: one pass, causal, calibrated, alert once.

For every point, using only earlier points:

1. Surprise at several time scales, all from ranks (so any offset or scale of the series,
   negative values and counts included, gives the same scores):
   * jump: how rare the size of the step from the previous point is among the last
     `history_points` steps (a spike or a sudden level change, on its first point);
   * level: the mean rank of the last w points among the `reference_points` values
     before them, minus 1/2, for each w in `windows` (a shift of the level, of either sign);
   * spread: the mean distance of those ranks from 1/2, minus its null 1/4 (values
     spreading out, or flattening: a flatline ranks in the middle).
2. Calibration: each level/spread statistic is compared with its own past (exponentially
   weighted mean and variance over about `calibration_points`, never narrower than the
   variance it would have on independent data, extreme values winsorized) and turned into a
   two-sided normal tail probability; the jump is already a tail probability (ranks, with
   an exponential tail beyond the 10th largest step). The anomaly likelihood is
   lambda = -log10 of the smallest of these probabilities, times the number of statistics
   (so more statistics do not mean more false alarms). lambda = 5 means "one in 100,000".
3. Absorption: when a level or spread statistic reaches `absorb_lambda`, the series has a
   new regime: `max(windows)` points later the points since then become the whole
   reference (and the rank windows restart), so a lasting new level is normal after that
   many points, instead of alarming until the old values leave the reference.
4. Alert once: a point's lambda counts in full only when it is at least 10 times less
   probable than anything reported recently (lambda >= memory + 1, a memory of reported
   values fading with a half-life of about 0.7 x `forget_points`); below that it is halved
   and damped by (lambda / (memory + 1))^2. The rising edge of an event is reported, the
   rest of it (plateau, tail) is not reported again and again.
5. What a series does once in 1,000 points is no anomaly: a reported lambda below 3 is 0.
   (Without this floor, the points just below it would be ranked too, and a threshold down
   there flags about one row in 200 of any normal series.)

The score written out is lambda / (lambda + 5), in [0, 1): 0.5 at one in 100,000.
Missing values (NaN) are skipped: they change no state and get no score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from services.decision_agent.anomaly.ranks import (
    gaussian_two_sided,
    mid_rank,
    upper_tail,
    window_clear,
    window_insert,
)

LAMBDA_AT_HALF = 5.0  # score = lambda / (lambda + 5): 0.5 at p = 1e-5
ALERT_SCORE = 0.5
NOTEWORTHY_LAMBDA = 3.0  # below one in 1,000 (after the multiplicity): reported as 0
RECORD_MARGIN = 1.0  # a report is repeated in full only if 10x less probable than the last
WINSOR_SD = 5.0  # statistics beyond 5 calibrated SDs update the calibration as if at 5

# Which statistic made a point's lambda (kinds; LEARNING = not enough history yet)
NONE, JUMP, LEVEL, SPREAD, LEARNING = 0, 1, 2, 3, 4
KIND_LABELS = ("none", "jump", "level_shift", "spread_change", "learning")


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's few parameters, all in points (the detector never reads time)."""

    reference_points: int = 300
    windows: tuple[int, ...] = (8, 32)
    history_points: int = 1000
    warm_up: int = 30
    calibration_points: int = 500
    absorb_lambda: float = 4.0
    forget_points: float = 100.0


@njit(cache=True)
def _stream(
    values: np.ndarray,
    reference_points: int,
    windows: np.ndarray,
    history_points: int,
    warm_up: int,
    calibration_points: int,
    absorb_lambda: float,
    forget_points: float,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    out = np.zeros(n)
    kind = np.full(n, LEARNING, dtype=np.int8)
    n_windows = len(windows)
    longest = windows.max()
    penalty = math.log10(1 + 2 * n_windows)
    rate = 1.0 / calibration_points
    decay = math.exp(-1.0 / forget_points)
    # the reference distribution of values, and recent values to rebuild it from
    ref_sorted = np.zeros(reference_points)
    ref_ring = np.zeros(reference_points)
    ref_state = np.zeros(2, dtype=np.int64)
    recent = np.zeros(longest)
    n_recent = 0
    # step sizes
    step_sorted = np.zeros(history_points)
    step_ring = np.zeros(history_points)
    step_state = np.zeros(2, dtype=np.int64)
    # running sums of rank statistics over each window
    level_hist = np.zeros(longest)
    spread_hist = np.zeros(longest)
    n_ranked = 0
    level_sum = np.zeros(n_windows)
    spread_sum = np.zeros(n_windows)
    # calibration of each statistic (2 per window: level, spread)
    mean = np.zeros(2 * n_windows)
    var = np.zeros(2 * n_windows)
    seen = np.zeros(2 * n_windows, dtype=np.int64)
    previous = math.nan
    memory = 0.0
    absorb_at = -1  # the point after which the reference is rebuilt (-1: none pending)
    for t in range(n):
        x = values[t]
        if math.isnan(x):
            continue
        best = 0.0
        best_kind = LEARNING
        if not math.isnan(previous):
            step = abs(x - previous)
            if step_state[0] >= warm_up:
                best = upper_tail(step_sorted, step_state[0], step)
                best_kind = JUMP
            window_insert(step_sorted, step_ring, step_state, step)
        shift = 0.0
        if ref_state[0] >= warm_up:
            u = mid_rank(ref_sorted, ref_state[0], x)
            slot = n_ranked % longest
            for w in range(n_windows):
                level_sum[w] += u - 0.5
                spread_sum[w] += abs(u - 0.5) - 0.25
                if n_ranked >= windows[w]:
                    old = (n_ranked - windows[w]) % longest
                    level_sum[w] -= level_hist[old]
                    spread_sum[w] -= spread_hist[old]
            level_hist[slot] = u - 0.5
            spread_hist[slot] = abs(u - 0.5) - 0.25
            n_ranked += 1
            for w in range(n_windows):
                width = windows[w]
                if n_ranked < width:
                    continue
                for q in range(2):
                    c = 2 * w + q
                    stat = (level_sum[w] if q == 0 else spread_sum[w]) / width
                    # variance of the statistic on independent data: uniform ranks
                    null_var = (1.0 / 12.0 if q == 0 else 1.0 / 48.0) / width
                    sd = math.sqrt(max(var[c], null_var))
                    if seen[c] >= warm_up:
                        lam = gaussian_two_sided((stat - mean[c]) / sd)
                        shift = max(shift, lam)
                        if lam > best or best_kind == LEARNING:
                            best = lam
                            best_kind = LEVEL if q == 0 else SPREAD
                        stat = min(mean[c] + WINSOR_SD * sd, max(mean[c] - WINSOR_SD * sd, stat))
                    seen[c] += 1
                    weight = max(rate, 1.0 / seen[c])
                    delta = stat - mean[c]
                    mean[c] += weight * delta
                    var[c] = (1.0 - weight) * (var[c] + weight * delta * delta)
        window_insert(ref_sorted, ref_ring, ref_state, x)
        recent[n_recent % longest] = x
        n_recent += 1
        previous = x
        if best_kind == LEARNING:
            continue
        lam = max(0.0, best - penalty)
        if absorb_at < 0 and shift - penalty >= absorb_lambda:
            absorb_at = n_recent + longest - 1
        if n_recent == absorb_at:
            # a new regime, confirmed `longest` points ago: its points become the reference
            absorb_at = -1
            window_clear(ref_state)
            for j in range(longest):
                window_insert(ref_sorted, ref_ring, ref_state, recent[(n_recent + j) % longest])
            n_ranked = 0
            level_sum[:] = 0.0
            spread_sum[:] = 0.0
        # alert once: only a point 10x less probable than the recent reports counts in
        # full; the rest of an event (its noisy plateau and tail) is damped
        edge = memory + RECORD_MARGIN
        reported = lam if lam >= edge else 0.5 * lam * (lam / edge) ** 2
        if reported < NOTEWORTHY_LAMBDA:
            reported = 0.0
        memory = max(reported, memory * decay)
        out[t] = reported
        kind[t] = best_kind if reported > 0 else NONE
    return out, kind


@dataclass(frozen=True)
class StreamScores:
    """Per value: the anomaly likelihood (-log10 p after suppression), the score in [0, 1)
    and the kind of surprise (KIND_LABELS index)."""

    likelihood: NDArray[np.float64]
    score: NDArray[np.float64]
    kind: NDArray[np.int8]


def score_stream(
    values: NDArray[np.float64], settings: DetectorSettings | None = None
) -> StreamScores:
    """Score the values in order (NaN = missing: skipped, score 0, kind LEARNING)."""
    s = settings or DetectorSettings()
    lam, kind = _stream(
        np.array(values, dtype=np.float64),  # a writable copy: one compiled signature
        s.reference_points,
        np.asarray(s.windows, dtype=np.int64),
        s.history_points,
        s.warm_up,
        s.calibration_points,
        s.absorb_lambda,
        s.forget_points,
    )
    return StreamScores(lam, lam / (lam + LAMBDA_AT_HALF), kind)
