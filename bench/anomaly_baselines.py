"""Baseline detectors for the anomaly benchmark (bench only, never in the product).

Each takes a series' values (NaN = missing) and returns one score per value, computed
causally (the score at t uses values up to t only):

* `windowed_gaussian`: the classic windowed z-score: how many standard deviations the value
  lies from the mean of the previous `window` values, reported as -log10 of its two-sided
  Gaussian tail probability (a probability would round to 1.0 for every z above ~8).
* `half_space_trees`: river's HalfSpaceTrees (streaming isolation forest) on a shingle of
  the last `shingle` values, min-max scaled online; score then learn, one point at a time.
* `matrix_profile`: stumpy's matrix profile, left side: the z-normalized distance from the
  subsequence of length `m` ending at t to its nearest neighbour among earlier ones (a
  discord score; causal, computed for the whole series at once).
* `random_likelihood`: uniform random scores (`evaluation.chance_scores`), the chance level
  of the window score.

For the channels of one experiment to share a threshold (services/decision_agent/anomaly/
combine.py), every detector's output is read as an anomaly likelihood lambda = -log10 p:
the windowed Gaussian's is one already, random scores u give -log10 u, and the raw scores of
HalfSpaceTrees and the matrix profile are turned into one by `causal_likelihood` (the tail
probability of each score among the scores the series had before it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

from services.decision_agent.anomaly.evaluation import chance_scores
from services.decision_agent.anomaly.ranks import upper_tail, window_insert

FloatArray = NDArray[np.float64]


def _filled(values: FloatArray) -> FloatArray:
    """Missing values carried forward (the baselines cannot take gaps); leading ones 0."""
    x = np.asarray(values, dtype=np.float64).copy()
    last = 0.0
    for k in range(len(x)):
        if math.isnan(x[k]):
            x[k] = last
        else:
            last = x[k]
    return x


def windowed_gaussian(values: FloatArray, window: int = 6400) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(x))
    ok = ~np.isnan(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    csq = np.concatenate([[0.0], np.cumsum(np.where(ok, x * x, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(ok)])
    for t in range(len(x)):
        lo = max(0, t - window)
        n = cnt[t] - cnt[lo]
        if n < 2 or not ok[t]:
            continue
        mean = (csum[t] - csum[lo]) / n
        var = max((csq[t] - csq[lo]) / n - mean * mean, 0.0)
        if var <= 0:
            continue
        z = abs(x[t] - mean) / math.sqrt(var)
        out[t] = -math.log10(max(math.erfc(z / math.sqrt(2.0)), 1e-300))
    return out


def half_space_trees(
    values: FloatArray, shingle: int = 4, n_trees: int = 10, height: int = 8, seed: int = 7
) -> FloatArray:
    from river import anomaly, preprocessing

    x = _filled(values)
    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=n_trees, height=height, window_size=250, seed=seed
    )
    out = np.zeros(len(x))
    for t in range(len(x)):
        features = {f"lag{k}": float(x[max(t - k, 0)]) for k in range(shingle)}
        out[t] = model.score_one(features)
        model.learn_one(features)
    return out


def matrix_profile(values: FloatArray, m: int = 16) -> FloatArray:
    """Left matrix profile from stumpy: for the subsequence ending at t, the distance to its
    nearest neighbour among earlier subsequences (stumpy's left index), z-normalized."""
    import stumpy

    x = _filled(values)
    out = np.zeros(len(x))
    if len(x) < 4 * m:
        return out
    left = stumpy.stump(x, m)[:, 2].astype(np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(x, m)
    mean, std = windows.mean(axis=1), windows.std(axis=1)
    has = np.flatnonzero(left >= 0)
    a, b = has, left[has]
    flat_a, flat_b = std[a] == 0, std[b] == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        za = (windows[a] - mean[a, None]) / std[a, None]
        zb = (windows[b] - mean[b, None]) / std[b, None]
        distance = np.sqrt(np.sum((za - zb) ** 2, axis=1))
    distance = np.where(flat_a & flat_b, 0.0, np.where(flat_a | flat_b, np.sqrt(m), distance))
    out[a + m - 1] = distance
    return out


def random_likelihood(values: FloatArray, name: str = "") -> FloatArray:
    """Uniform random p-values as likelihoods: the chance level on the likelihood scale
    (the same draws as `revops anomalies evaluate`'s chance baseline)."""
    return -np.log10(np.maximum(chance_scores(len(values), name), 1e-300))


@njit(cache=True)
def _causal_likelihood(raw: np.ndarray, warm_up: int) -> np.ndarray:
    n = len(raw)
    out = np.zeros(n)
    ordered = np.zeros(max(n, 1))
    ring = np.zeros(max(n, 1))
    state = np.zeros(2, dtype=np.int64)
    for t in range(n):
        x = raw[t]
        if math.isnan(x):
            continue
        if state[0] >= warm_up:
            out[t] = upper_tail(ordered, state[0], x)
        window_insert(ordered, ring, state, x)
    return out


def causal_likelihood(raw: FloatArray, warm_up: int = 30) -> FloatArray:
    """-log10 of each raw score's upper tail probability among all the scores before it
    (empirical, with the exponential tail of services/decision_agent/anomaly/ranks.py
    beyond the 10th largest): a calibrated likelihood for a detector that has none."""
    return _causal_likelihood(np.array(raw, dtype=np.float64), warm_up)
