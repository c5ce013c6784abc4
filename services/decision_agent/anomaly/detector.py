"""The general streaming anomaly detector: one pass, causal, calibrated, alert once.

For every point, using only earlier points (docs/anomaly-detection.md explains each step):

1. Surprise, all from ranks (any offset or scale of the series, its negative, negative
   values and counts give the same scores), seven statistics:
   * range (spatial novelty): the two-sided tail of the value among the last
     `history_points` values; beyond the range seen, the excess is modelled explicitly
     (an exponential tail, ranks.py) instead of saturating at 1/N;
   * jump: the upper tail of the size of the step from the previous point among the last
     `history_points` steps (a spike, or the first point of a level change);
   * level: the mean rank of the last w points among the `reference_points` values before
     them, minus 1/2, for each w in `windows` (a shift, either sign);
   * spread: the mean distance of those ranks from 1/2, minus its null 1/4 (values
     spreading out; upward only: a flat stretch is no alarm);
   * pattern (sequence novelty): each point is a symbol (tercile of its level among the
     reference x class of its move: big down, down, flat, up, big up, by the rank of the
     step's size); the surprise of a symbol given the two before it, from counts of what
     the series produced so far (Laplace), averaged over `pattern_window` symbols
     (patterns.py). A pattern seen before is no longer novel.
2. Calibration: each statistic's raw value becomes a tail probability under the series'
   own history of that statistic: range and jump are tail probabilities already (AS_IS);
   the pattern surprise is ranked among its own last `calibration_points` values
   (EMPIRICAL); level and spread, as mean ranks, against an exponentially weighted mean
   and variance over about `calibration_points` (GAUSSIAN, never narrower than their
   variance on independent data, extreme values winsorized). The anomaly likelihood is
   lambda = -log10 of the smallest probability, minus log10 of the number of statistics
   (Bonferroni: more statistics do not mean more false alarms). lambda 5 = one in 100,000.
3. Absorption: when range, level or spread reaches `absorb_lambda`, the series has a new
   regime: `max(windows)` points later those points become the whole reference (and the
   rank windows restart), so a lasting new level is normal after that many points.
4. Alert once (refractory): a point counts in full only when lambda >= max(memory + 1,
   `refractory_ratio` x memory), the memory being the reported values fading with a
   half-life of about 0.7 x `forget_points`; below that it is halved and damped by
   (lambda / edge)^2. The rising edge of an event is reported, its plateau and tail not.
5. What a series does once in 10,000 points is no anomaly: a reported lambda below
   `noteworthy` (4) is 0.

Learning period: `warm_up` (30) points before any statistic is scored (the level windows
and the pattern then need 8 to 32 more): short enough for a 365-day usage series.
The score written out is lambda / (lambda + 5), in [0, 1): 0.5 at one in 100,000.
Missing values (NaN) are skipped: they change no state and get no score.

numba caches compiled code per source file: after editing ranks.py or patterns.py, delete
the `__pycache__/*.nbi` and `*.nbc` files of this package (the cache of `_stream` does not
see changes in the functions it inlines from other modules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from services.decision_agent.anomaly import patterns
from services.decision_agent.anomaly.ranks import (
    gaussian_two_sided,
    mid_rank,
    two_sided_tail,
    upper_tail,
    window_clear,
    window_insert,
)

LAMBDA_AT_HALF = 5.0  # score = lambda / (lambda + 5): 0.5 at p = 1e-5
ALERT_SCORE = 0.5
NOTEWORTHY_LAMBDA = 4.0  # below one in 10,000 (after the multiplicity): reported as 0
RECORD_MARGIN = 1.0  # a report is repeated in full only if 10x less probable than the last
WINSOR_SD = 5.0  # statistics beyond 5 calibrated SDs update the calibration as if at 5

# Which statistic made a point's lambda (kinds; LEARNING = not enough history yet)
NONE, JUMP, LEVEL, SPREAD, LEARNING, RANGE, PATTERN = 0, 1, 2, 3, 4, 5, 6
KIND_LABELS = (
    "none",
    "jump",
    "level_shift",
    "spread_change",
    "learning",
    "out_of_range",
    "new_pattern",
)
# Statistics, in the order of the calibration histories: range, jump, pattern, then a
# level and a spread statistic per window.
ST_RANGE, ST_JUMP, ST_PATTERN, ST_WINDOWS = 0, 1, 2, 3

# How a statistic's raw value becomes a tail probability (see _calibrate)
AS_IS, EMPIRICAL, GAUSSIAN, GAUSSIAN_UP, EMPIRICAL_TWO_SIDED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's few parameters, all in points (the detector never reads time), and
    which signals it uses (all by default; switching one off is for the ablation)."""

    reference_points: int = 600
    windows: tuple[int, ...] = (8, 32)
    history_points: int = 1000
    warm_up: int = 30
    calibration_points: int = 500
    absorb_lambda: float = 4.0
    forget_points: float = 100.0
    refractory_ratio: float = 2.0
    pattern_order: int = 2
    pattern_window: int = 8
    pattern_scale: int = 1
    # range and pattern are measured in the ablation (bench/bench_anomaly.py) and off:
    # neither helped on SKAB valve1, where the settings are chosen (docs/anomaly-detection.md)
    use_range: bool = False
    use_jump: bool = True
    use_level: bool = True
    use_spread: bool = True
    use_pattern: bool = False
    range_calibration: int = AS_IS
    jump_calibration: int = AS_IS
    pattern_calibration: int = EMPIRICAL
    level_calibration: int = GAUSSIAN
    spread_calibration: int = GAUSSIAN_UP
    pattern_null_var: float = 0.01
    noteworthy: float = NOTEWORTHY_LAMBDA


@njit(cache=True)
def _calibrate(
    mode: int,
    c: int,
    raw: float,
    null_var: float,
    history: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float],
) -> float:
    """-log10 of the probability of the statistic's raw value under its own past (-1 while
    that past is too short), then the value joins the past.

    AS_IS: the raw value is a -log10 p already. EMPIRICAL: its upper tail among its last
    values (ranks, exponential excess). GAUSSIAN(_UP): its two-sided (upper) normal tail
    under an exponentially weighted mean and variance over about 1 / rate values, the
    variance never below `null_var` (its variance on independent data) and values beyond
    WINSOR_SD updating it as if at WINSOR_SD (one event does not teach that events are
    normal). `history`: every statistic's past (sorted values, ring and [count, head] per
    statistic; EW mean, variance and count per statistic), the warm-up and the EW rate."""
    cal_sorted, cal_ring, cal_state, ew, warm_up, rate = history
    if mode == AS_IS:
        return raw
    lam = -1.0
    if mode in (EMPIRICAL, EMPIRICAL_TWO_SIDED):
        if cal_state[c, 0] >= warm_up:
            if mode == EMPIRICAL:
                lam = upper_tail(cal_sorted[c], cal_state[c, 0], raw)
            else:
                lam = two_sided_tail(cal_sorted[c], cal_state[c, 0], raw)
        window_insert(cal_sorted[c], cal_ring[c], cal_state[c], raw)
        return lam
    mean, var, seen = ew[c, 0], ew[c, 1], ew[c, 2]
    sd = math.sqrt(max(var, null_var))
    if seen >= warm_up:
        z = (raw - mean) / sd
        lam = gaussian_two_sided(z) if (mode == GAUSSIAN or z > 0) else 0.0
        raw = min(mean + WINSOR_SD * sd, max(mean - WINSOR_SD * sd, raw))
    seen += 1
    weight = max(rate, 1.0 / seen)
    delta = raw - mean
    ew[c, 0] = mean + weight * delta
    ew[c, 1] = (1.0 - weight) * (var + weight * delta * delta)
    ew[c, 2] = seen
    return lam


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
    refractory_ratio: float,
    pattern_order: int,
    pattern_window: int,
    pattern_scale: int,
    enabled: np.ndarray,
    calibration: np.ndarray,
    pattern_null_var: float,
    noteworthy: float,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    out = np.zeros(n)
    kind = np.full(n, LEARNING, dtype=np.int8)
    n_windows = len(windows)
    longest = windows.max()
    n_stats = ST_WINDOWS + 2 * n_windows
    stat_kind = np.zeros(n_stats, dtype=np.int8)
    stat_kind[ST_RANGE], stat_kind[ST_JUMP], stat_kind[ST_PATTERN] = RANGE, JUMP, PATTERN
    for w in range(n_windows):
        stat_kind[ST_WINDOWS + 2 * w] = LEVEL
        stat_kind[ST_WINDOWS + 2 * w + 1] = SPREAD
    stat_on = np.zeros(n_stats, dtype=np.bool_)
    stat_on[ST_RANGE], stat_on[ST_JUMP], stat_on[ST_PATTERN] = enabled[0], enabled[1], enabled[4]
    for w in range(n_windows):
        stat_on[ST_WINDOWS + 2 * w] = enabled[2]
        stat_on[ST_WINDOWS + 2 * w + 1] = enabled[3]
    penalty = math.log10(max(1, int(stat_on.sum())))
    decay = math.exp(-1.0 / forget_points)
    # the reference distribution of values (ranks, levels), and recent values to rebuild it
    ref_sorted = np.zeros(reference_points)
    ref_ring = np.zeros(reference_points)
    ref_state = np.zeros(2, dtype=np.int64)
    recent = np.zeros(longest)
    n_recent = 0
    # the long history of values (range) and of step sizes (jumps, moves)
    val_sorted = np.zeros(history_points)
    val_ring = np.zeros(history_points)
    val_state = np.zeros(2, dtype=np.int64)
    step_sorted = np.zeros(history_points)
    step_ring = np.zeros(history_points)
    step_state = np.zeros(2, dtype=np.int64)
    # running sums of rank statistics over each window
    level_hist = np.zeros(longest)
    spread_hist = np.zeros(longest)
    n_ranked = 0
    level_sum = np.zeros(n_windows)
    spread_sum = np.zeros(n_windows)
    # pattern counts and the recent surprises
    pair_counts = np.zeros(patterns.contexts(pattern_order) * patterns.ALPHABET, dtype=np.int32)
    context_counts = np.zeros(patterns.contexts(pattern_order), dtype=np.int32)
    context = 0
    n_symbols = 0
    surprise_ring = np.zeros(pattern_window)
    segment_sum = 0.0
    segment_fill = 0
    previous_segment = math.nan
    move_sorted = np.zeros(history_points)
    move_ring = np.zeros(history_points)
    move_state = np.zeros(2, dtype=np.int64)
    surprise_sum = 0.0
    n_surprises = 0
    # each statistic's own history, for its calibration
    cal_sorted = np.zeros((n_stats, calibration_points))
    cal_ring = np.zeros((n_stats, calibration_points))
    cal_state = np.zeros((n_stats, 2), dtype=np.int64)
    lam_of = np.full(n_stats, -1.0)
    ew = np.zeros((n_stats, 3))  # mean, variance, count
    rate = 1.0 / calibration_points
    history = (cal_sorted, cal_ring, cal_state, ew, warm_up, rate)
    modes = np.full(n_stats, GAUSSIAN, dtype=np.int64)
    modes[:ST_WINDOWS] = calibration[:ST_WINDOWS]
    previous = math.nan
    memory = 0.0
    absorb_at = -1  # the point after which the reference is rebuilt (-1: none pending)
    for t in range(n):
        x = values[t]
        if math.isnan(x):
            continue
        lam_of[:] = -1.0
        if val_state[0] >= warm_up:
            raw = two_sided_tail(val_sorted, val_state[0], x)
            lam_of[ST_RANGE] = _calibrate(modes[ST_RANGE], ST_RANGE, raw, 0.0, history)
        window_insert(val_sorted, val_ring, val_state, x)
        if not math.isnan(previous):
            size = abs(x - previous)
            if step_state[0] >= warm_up:
                raw = upper_tail(step_sorted, step_state[0], size)
                lam_of[ST_JUMP] = _calibrate(modes[ST_JUMP], ST_JUMP, raw, 0.0, history)
            window_insert(step_sorted, step_ring, step_state, size)
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
                if n_ranked < windows[w]:
                    continue
                for q in range(2):
                    c = ST_WINDOWS + 2 * w + q
                    raw = (level_sum[w] if q == 0 else spread_sum[w]) / windows[w]
                    # variance of the statistic on independent data: uniform ranks
                    null_var = (1.0 / 12.0 if q == 0 else 1.0 / 48.0) / windows[w]
                    mode = calibration[3 + q]
                    lam_of[c] = _calibrate(mode, c, raw, null_var, history)
            # the pattern: one symbol per segment of `pattern_scale` points (its mean)
            segment_sum += x
            segment_fill += 1
            if segment_fill == pattern_scale:
                segment = segment_sum / pattern_scale
                segment_sum = 0.0
                segment_fill = 0
                if not math.isnan(previous_segment):
                    move = segment - previous_segment
                    ready = move_state[0] >= warm_up
                    move_rank = mid_rank(move_sorted, move_state[0], abs(move)) if ready else 0.5
                    window_insert(move_sorted, move_ring, move_state, abs(move))
                    if ready:
                        level = mid_rank(ref_sorted, ref_state[0], segment)
                        sym = patterns.symbol(level, move, move_rank)
                        if n_symbols >= pattern_order:
                            surprise = patterns.surprise_and_learn(
                                pair_counts, context_counts, context, sym
                            )
                            slot = n_surprises % pattern_window
                            surprise_sum += surprise - surprise_ring[slot]
                            surprise_ring[slot] = surprise
                            n_surprises += 1
                            if n_surprises >= pattern_window:
                                lam_of[ST_PATTERN] = _calibrate(
                                    modes[ST_PATTERN],
                                    ST_PATTERN,
                                    surprise_sum / pattern_window,
                                    pattern_null_var / pattern_window,
                                    history,
                                )
                        context = patterns.next_context(context, sym, pattern_order)
                        n_symbols += 1
                previous_segment = segment
        window_insert(ref_sorted, ref_ring, ref_state, x)
        recent[n_recent % longest] = x
        n_recent += 1
        previous = x
        best = -1.0
        best_kind = LEARNING
        shift = 0.0
        for c in range(n_stats):
            if not stat_on[c] or lam_of[c] < 0:
                continue
            if lam_of[c] > best:
                best = lam_of[c]
                best_kind = stat_kind[c]
            if c != ST_JUMP and c != ST_PATTERN:
                shift = max(shift, lam_of[c])
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
        # alert once: only a point much less probable than the recent reports counts in
        # full; the rest of an event (its noisy plateau and tail) is damped
        edge = max(memory + RECORD_MARGIN, refractory_ratio * memory)
        reported = lam if lam >= edge else 0.5 * lam * (lam / edge) ** 2
        if reported < noteworthy:
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
    enabled = np.array(
        [s.use_range, s.use_jump, s.use_level, s.use_spread, s.use_pattern], dtype=np.bool_
    )
    lam, kind = _stream(
        np.array(values, dtype=np.float64),  # a writable copy: one compiled signature
        s.reference_points,
        np.asarray(s.windows, dtype=np.int64),
        s.history_points,
        s.warm_up,
        s.calibration_points,
        s.absorb_lambda,
        s.forget_points,
        s.refractory_ratio,
        s.pattern_order,
        s.pattern_window,
        s.pattern_scale,
        enabled,
        np.array(
            [
                s.range_calibration,
                s.jump_calibration,
                s.pattern_calibration,
                s.level_calibration,
                s.spread_calibration,
            ],
            dtype=np.int64,
        ),
        s.pattern_null_var,
        s.noteworthy,
    )
    return StreamScores(lam, lam / (lam + LAMBDA_AT_HALF), kind)
