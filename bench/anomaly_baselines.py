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
* `random_scores`: uniform random scores, the chance level of the window score.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from numpy.typing import NDArray

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


def random_scores(values: FloatArray, name: str = "") -> FloatArray:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).random(len(values))
