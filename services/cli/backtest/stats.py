"""Statistics of the deal backtest: AUC with a bootstrap confidence interval, computed for
the score and the baselines on the same resampled deals; calibration by band; the leakage
guard (one field that alone almost separates won from lost).

numpy and scikit-learn are imported by this module: import it inside commands only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


def auc(scores: Sequence[float] | np.ndarray, won: Sequence[bool] | np.ndarray) -> float | None:
    """ROC AUC: the chance a random won deal outscores a random lost one (ties half); None
    without both won and lost deals."""
    labels = np.asarray(won, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, np.asarray(scores, dtype=float)))


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None

    def render(self, signed: bool = False) -> str:
        if self.value is None:
            return "n/a"
        fmt = "{:+.3f}" if signed else "{:.3f}"
        if self.low is None or self.high is None:
            return fmt.format(self.value)
        return f"{fmt.format(self.value)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"


def bootstrap_aucs(
    scorers: Mapping[str, Sequence[float]],
    won: Sequence[bool],
    *,
    resamples: int,
    confidence: float,
    seed: int,
    versus: str | None = None,
) -> dict[str, Interval]:
    """AUC and its percentile interval for every scorer, on the same stratified resamples
    (won and lost deals resampled separately, so each resample has both). With `versus`,
    also `<name> - <versus>` for every other scorer: the paired difference."""
    labels = np.asarray(won, dtype=bool)
    names = list(scorers)
    values = {n: np.asarray(scorers[n], dtype=float) for n in names}
    point = {n: auc(values[n], labels) for n in names}
    result: dict[str, Interval] = {}
    if any(v is None for v in point.values()):  # one outcome only: nothing to rank
        undefined = {n: Interval(point[n], None, None) for n in names}
        if versus is not None:
            others = [n for n in names if n != versus]
            undefined |= {f"{n} - {versus}": Interval(None, None, None) for n in others}
        return undefined
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    # one row per resample: the won deals drawn first, then the lost ones
    index = np.concatenate(
        [
            rng.choice(pos, size=(resamples, len(pos)), replace=True),
            rng.choice(neg, size=(resamples, len(neg)), replace=True),
        ],
        axis=1,
    )
    samples = {n: _resampled_auc(values[n][index], len(pos)) for n in names}
    tail = (1 - confidence) / 2 * 100
    for n in names:
        low, high = np.percentile(samples[n], [tail, 100 - tail])
        result[n] = Interval(point[n], float(low), float(high))
    if versus is not None:
        for n in names:
            if n == versus:
                continue
            diff = np.asarray(samples[n]) - np.asarray(samples[versus])
            low, high = np.percentile(diff, [tail, 100 - tail])
            value = (point[n] or 0.0) - (point[versus] or 0.0)
            result[f"{n} - {versus}"] = Interval(value, float(low), float(high))
    return result


def _resampled_auc(values: np.ndarray, n_pos: int) -> np.ndarray:
    """AUC of each row (the first `n_pos` columns are the won deals), by the Mann-Whitney
    rank sum with ties averaged: the same number roc_auc_score gives, for all rows at once."""
    from scipy.stats import rankdata

    ranks = rankdata(values, axis=1)
    n_neg = values.shape[1] - n_pos
    rank_sum = ranks[:, :n_pos].sum(axis=1)
    return np.asarray((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class BandStats:
    band: str
    min_score: int
    max_score: int
    deals: int
    won: int
    mean_score: float | None
    win_rate: float | None


def calibration(
    bands: Sequence[tuple[str, int, int]], scores: Sequence[int], won: Sequence[bool]
) -> list[BandStats]:
    """Per band (name, min, max), highest first: deals, wins, mean score, observed win rate."""
    out = []
    for name, low, high in sorted(bands, key=lambda b: -b[1]):
        members = [(s, w) for s, w in zip(scores, won, strict=True) if low <= s <= high]
        n_won = sum(w for _, w in members)
        out.append(
            BandStats(
                band=name,
                min_score=low,
                max_score=high,
                deals=len(members),
                won=n_won,
                mean_score=round(sum(s for s, _ in members) / len(members), 1) if members else None,
                win_rate=round(n_won / len(members), 3) if members else None,
            )
        )
    return out


@dataclass(frozen=True)
class FieldSignal:
    """How well one field alone tells won from lost."""

    field: str
    auc: float  # max(AUC, 1 - AUC): direction does not matter for a leak
    present_won: float
    present_lost: float
    kind: str  # "presence" | "value"

    def describe(self) -> str:
        if self.kind == "presence":
            how = (
                f"present on {self.present_won:.0%} of won and {self.present_lost:.0%} of lost "
                "deals"
            )
        else:
            how = "its values alone rank won above lost deals (or the reverse)"
        return (
            f"{self.field} almost separates won from lost on its own (AUC {self.auc:.2f}; "
            f"{how}): it may be filled in once the outcome is known. Give it history or leave "
            "it out of the rubric"
        )


def leakage(
    fields: Mapping[str, Sequence[object]], won: Sequence[bool], threshold: float
) -> list[FieldSignal]:
    """Fields whose presence, or whose numeric value, separates won from lost with an AUC of
    at least `threshold` (either direction). Fields empty everywhere are skipped."""
    labels = np.asarray(won, dtype=bool)
    if labels.all() or not labels.any():
        return []
    found: list[FieldSignal] = []
    for name, values in fields.items():
        present = np.array([v is not None and v != "" for v in values], dtype=float)
        share_won = float(present[labels].mean())
        share_lost = float(present[~labels].mean())
        if present.any() and not present.all():
            score = auc(present, labels) or 0.5
            strength = max(score, 1 - score)
            if strength >= threshold:
                found.append(FieldSignal(name, strength, share_won, share_lost, "presence"))
                continue
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers) and len({n for n in numbers}) > 1:
            score = auc([n or 0.0 for n in numbers], labels) or 0.5
            strength = max(score, 1 - score)
            if strength >= threshold:
                found.append(FieldSignal(name, strength, share_won, share_lost, "value"))
    return sorted(found, key=lambda f: -f.auc)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
