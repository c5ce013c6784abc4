"""Window-based scoring of streaming anomaly detectors (the Numenta Anomaly Benchmark method).

A labelled series has anomaly windows (inclusive row ranges). A row whose score is at or
above the threshold is a detection. With the costs (A_tp, A_fp, A_fn) of a profile:

* the first detection inside a window earns ``A_tp * sigma(y)``, with ``y`` its relative
  position: ``y = -(end - i + 1) / width`` (-1 on the first row of the window, close to 0 on
  its last), so the earlier the detection, the larger the reward; later detections in the
  same window neither earn nor cost anything;
* a window without a detection costs ``A_fn``;
* each detection outside every window costs ``A_fp * -sigma(y)`` with
  ``y = (i - end) / width`` measured after the previous window (a detection just after a
  window costs little, one far after it the full ``A_fp``); before every window it costs
  the full ``A_fp``;
* ``sigma(y) = 2 / (1 + exp(5 y)) - 1`` (``-1`` beyond ``y = 3``), the scaled sigmoid.

The first 15 % of each series (at most 750 rows, NAB's rule) is a probation period in
which a detector learns: detections there are ignored, and a window that ends inside it
is not scored. One threshold is chosen for a whole corpus (every candidate, i.e. every
distinct score, is tried), and the raw total is normalized so that flagging nothing
scores 0 and a detector that flags the first scored row of every window scores 100:
``100 * (raw - null) / (perfect - null)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
PROBATION_SHARE = 0.15
PROBATION_CAP = 750
STEEPNESS = 5.0
# Draws of random scores averaged for the chance baseline: one draw of a small corpus can
# land well above or below its expected score.
CHANCE_DRAWS = 5


@dataclass(frozen=True)
class CostProfile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, CostProfile] = {
    p.name: p
    for p in (
        CostProfile("standard", tp=1.0, fp=0.11, fn=1.0),
        CostProfile("reward_low_fp", tp=1.0, fp=0.22, fn=1.0),
        CostProfile("reward_low_fn", tp=1.0, fp=0.11, fn=2.0),
    )
}


@dataclass(frozen=True)
class Window:
    """Rows `start..end` (inclusive) of one labelled anomaly."""

    start: int
    end: int

    @property
    def width(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class LabelledScores:
    """A detector's scores for every row of one series, and the series' windows."""

    name: str
    scores: FloatArray
    windows: tuple[Window, ...]


def probation_rows(n_rows: int) -> int:
    return min(math.floor(PROBATION_SHARE * n_rows), PROBATION_CAP)


def scaled_sigmoid(y: FloatArray | float) -> FloatArray:
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(STEEPNESS * y)) - 1.0
    return np.where(y > 3.0, -1.0, value)


def scored_windows(series: LabelledScores) -> list[Window]:
    """The windows that count: not ending inside the probation period, clipped to the data."""
    n = len(series.scores)
    probation = probation_rows(n)
    kept = []
    for w in sorted(series.windows, key=lambda w: w.start):
        start, end = max(w.start, 0), min(w.end, n - 1)
        if end >= probation and start <= end:
            kept.append(Window(start, end))
    return kept


@dataclass(frozen=True)
class RowValues:
    """What a detection on each scored row (after probation) is worth, and its window."""

    rows: NDArray[np.int64]
    value: FloatArray  # reward (in a window) or cost (negative, outside every window)
    window: NDArray[np.int64]  # index into `windows`, -1 outside every window
    windows: list[Window]


def row_values(series: LabelledScores, profile: CostProfile) -> RowValues:
    n = len(series.scores)
    windows = scored_windows(series)
    rows = np.arange(probation_rows(n), n, dtype=np.int64)
    window = np.full(len(rows), -1, dtype=np.int64)
    value = np.full(len(rows), -profile.fp)  # before every window: the full cost
    for k, w in enumerate(windows):
        inside = (rows >= w.start) & (rows <= w.end)
        window[inside] = k
        value[inside] = profile.tp * scaled_sigmoid(-(w.end - rows[inside] + 1) / w.width)
        after = rows > w.end
        value[after] = profile.fp * scaled_sigmoid((rows[after] - w.end) / w.width)
    return RowValues(rows, value, window, windows)


@dataclass(frozen=True)
class Sweep:
    """The threshold that maximizes the corpus total, and the totals it is judged by."""

    profile: CostProfile
    threshold: float  # detections are rows with score >= threshold (inf: none)
    raw: float
    null: float
    perfect: float

    @property
    def normalized(self) -> float:
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span > 0 else 0.0


def perfect_total(corpus: Sequence[LabelledScores], profile: CostProfile) -> float:
    """Every window detected on its first scored row."""
    total = 0.0
    for series in corpus:
        probation = probation_rows(len(series.scores))
        for w in scored_windows(series):
            first = max(w.start, probation)
            total += profile.tp * float(scaled_sigmoid(-(w.end - first + 1) / w.width))
    return total


def sweep(corpus: Sequence[LabelledScores], profile: CostProfile) -> Sweep:
    """Try every distinct score as the threshold; keep the one with the highest total.

    Lowering the threshold past a row makes it a detection: outside the windows that adds
    its (negative) value; inside a window it raises the window's reward to the best value
    detected so far (an earlier row is worth more), the first one also cancelling the
    window's miss cost. Totals are cumulative sums in descending score order.
    """
    scores_parts, delta_parts = [], []
    n_windows = 0
    for series in corpus:
        values = row_values(series, profile)
        scores = np.nan_to_num(series.scores[values.rows], nan=-np.inf)
        delta = np.where(values.window < 0, values.value, 0.0)
        order = np.argsort(-scores, kind="stable")
        for k in range(len(values.windows)):
            member = order[values.window[order] == k]
            best = np.maximum.accumulate(values.value[member])
            gain = np.diff(best, prepend=-profile.fn)
            delta[member] = gain
        scores_parts.append(scores)
        delta_parts.append(delta)
        n_windows += len(values.windows)
    null = -profile.fn * n_windows
    perfect = perfect_total(corpus, profile)
    if not scores_parts:
        return Sweep(profile, math.inf, null, null, perfect)
    scores = np.concatenate(scores_parts)
    delta = np.concatenate(delta_parts)
    order = np.argsort(-scores, kind="stable")
    scores, totals = scores[order], null + np.cumsum(delta[order])
    # A threshold takes every row with a score >= it: judge each distinct score at the last
    # row holding it; rows that never score (NaN) are no candidate.
    with np.errstate(invalid="ignore"):  # -inf - -inf between unscored rows: dropped below
        last_of_value = np.flatnonzero(np.diff(scores, append=-np.inf) != 0)
    last_of_value = last_of_value[np.isfinite(scores[last_of_value])]
    if len(last_of_value) == 0 or totals[last_of_value].max() <= null:
        return Sweep(profile, math.inf, null, null, perfect)
    best = last_of_value[int(np.argmax(totals[last_of_value]))]
    return Sweep(profile, float(scores[best]), float(totals[best]), null, perfect)


@dataclass(frozen=True)
class SeriesResult:
    """One series at a fixed threshold."""

    name: str
    raw: float
    windows: int
    detected: int
    delays: list[int]  # rows from each detected window's start to its first detection
    false_detections: int  # detected rows outside every window
    alarms: int  # runs of consecutive detected rows
    true_alarms: int  # runs that touch a window
    scored_rows: int


def evaluate_series(series: LabelledScores, profile: CostProfile, threshold: float) -> SeriesResult:
    values = row_values(series, profile)
    detected = np.nan_to_num(series.scores[values.rows], nan=-np.inf) >= threshold
    raw = float(np.sum(values.value[detected & (values.window < 0)]))
    delays = []
    for k, w in enumerate(values.windows):
        hits = np.flatnonzero(detected & (values.window == k))
        if len(hits):
            raw += float(values.value[hits[0]])
            delays.append(int(values.rows[hits[0]] - w.start))
        else:
            raw -= profile.fn
    starts = np.flatnonzero(detected & ~np.concatenate([[False], detected[:-1]]))
    run_id = np.cumsum(np.isin(np.arange(len(detected)), starts)) - 1
    touching = {int(r) for r in run_id[detected & (values.window >= 0)]}
    return SeriesResult(
        name=series.name,
        raw=raw,
        windows=len(values.windows),
        detected=len(delays),
        delays=delays,
        false_detections=int(np.sum(detected & (values.window < 0))),
        alarms=len(starts),
        true_alarms=len(touching),
        scored_rows=len(values.rows),
    )


@dataclass(frozen=True)
class CorpusResult:
    """A corpus at the swept (or a given) threshold: the window score and event figures."""

    profile: CostProfile
    threshold: float
    normalized: float
    raw: float
    series: list[SeriesResult]

    @property
    def windows(self) -> int:
        return sum(s.windows for s in self.series)

    @property
    def detected(self) -> int:
        return sum(s.detected for s in self.series)

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else math.nan

    @property
    def precision(self) -> float:
        """Share of alarms (runs of detected rows) that touch a labelled window."""
        alarms = sum(s.alarms for s in self.series)
        return sum(s.true_alarms for s in self.series) / alarms if alarms else math.nan

    @property
    def mean_delay(self) -> float:
        delays = [d for s in self.series for d in s.delays]
        return float(np.mean(delays)) if delays else math.nan

    @property
    def false_alarms_per_1000(self) -> float:
        rows = sum(s.scored_rows for s in self.series)
        return 1000.0 * sum(s.false_detections for s in self.series) / rows if rows else math.nan


def evaluate(
    corpus: Sequence[LabelledScores], profile: CostProfile, threshold: float | None = None
) -> CorpusResult:
    """Score a corpus with one threshold: the best one (swept) unless `threshold` is given."""
    swept = sweep(corpus, profile)
    chosen = swept.threshold if threshold is None else threshold
    results = [evaluate_series(s, profile, chosen) for s in corpus]
    raw = sum(r.raw for r in results)
    span = swept.perfect - swept.null
    normalized = 100.0 * (raw - swept.null) / span if span > 0 else 0.0
    return CorpusResult(profile, chosen, normalized, raw, results)


def chance_scores(rows: int, name: str, draw: int = 0) -> FloatArray:
    """Uniform random scores for a series of `rows` rows: the chance level of the window
    score. Seeded by the series' name (and the draw), so a corpus gives the same figure on
    every run and on every machine."""
    key = name if draw == 0 else f"{name}#{draw}"
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).random(rows)


def chance_level(corpus: Sequence[LabelledScores], profile: CostProfile) -> float:
    """The normalized score random scores reach on `corpus` at their own best threshold,
    averaged over `CHANCE_DRAWS` draws: the figure a detector has to beat."""
    return chance_levels(corpus, [profile])[profile.name]


def chance_levels(
    corpus: Sequence[LabelledScores], profiles: Sequence[CostProfile]
) -> dict[str, float]:
    """`chance_level` of each profile, from one set of draws. Rows the detector left without
    a score (NaN) stay without one, so both are judged on the same rows."""
    draws = [
        [
            replace(
                s,
                scores=np.where(
                    np.isnan(s.scores), np.nan, chance_scores(len(s.scores), s.name, draw)
                ),
            )
            for s in corpus
        ]
        for draw in range(CHANCE_DRAWS)
    ]
    return {
        p.name: float(np.mean([sweep(drawn, p).normalized for drawn in draws])) for p in profiles
    }
