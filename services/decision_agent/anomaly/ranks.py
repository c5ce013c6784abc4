"""Sliding sorted windows and tail probabilities, compiled with numba for the detector.

A window holds the last `capacity` values of a stream twice: in arrival order (a ring, to
know which value leaves) and sorted (to rank a new value with a binary search). Inserting
costs one memmove of at most `capacity` floats.

Tail probabilities are empirical with a +1 prior (a value beyond everything seen in n points
has probability 1/(n+1)); beyond the k-th most extreme value the tail is modelled as
exponential. Its scale comes from the spacing of the tail quantiles (k and 2k from the
end), but is never smaller than the average decay of that half of the distribution
(median to the k-th value): a tail made of repeated values (a quantized series) then cannot
make the first value past it look impossibly rare.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TAIL_K = 10  # values beyond the k-th most extreme one follow the exponential tail model
MAX_LAMBDA = 30.0  # -log10 of the smallest probability reported


@njit(cache=True)
def window_insert(
    sorted_values: np.ndarray, ring: np.ndarray, state: np.ndarray, value: float
) -> None:
    """Add `value`; once the window is full the oldest value leaves. state = [count, head]."""
    capacity = len(ring)
    count = state[0]
    if count == capacity:
        oldest = ring[state[1]]
        at = np.searchsorted(sorted_values[:count], oldest)
        sorted_values[at : count - 1] = sorted_values[at + 1 : count]
        count -= 1
    at = np.searchsorted(sorted_values[:count], value)
    sorted_values[at + 1 : count + 1] = sorted_values[at:count].copy()
    sorted_values[at] = value
    ring[state[1]] = value
    state[1] = (state[1] + 1) % capacity
    state[0] = count + 1


@njit(cache=True)
def window_clear(state: np.ndarray) -> None:
    state[0] = 0
    state[1] = 0


@njit(cache=True)
def _lambda(p: float) -> float:
    return min(MAX_LAMBDA, -math.log10(max(p, 1e-300)))


@njit(cache=True)
def upper_tail(sorted_values: np.ndarray, count: int, value: float) -> float:
    """-log10 P(X >= value) under the window's distribution."""
    xs = sorted_values
    k = TAIL_K
    at_least = count - np.searchsorted(xs[:count], value, side="left")
    p = float((at_least + 1.0) / (count + 1.0))
    if count >= 4 * k and at_least < k:
        edge = xs[count - k]
        scale = max(
            (edge - xs[count - 2 * k]) / math.log(2.0),
            (edge - xs[count // 2]) / math.log(count / (2.0 * k)),
        )
        if value > edge and scale > 1e-9 * (xs[count - 1] - xs[0]):
            p = min(p, k / (count + 1.0) * math.exp(-(value - edge) / scale))
    return _lambda(p)


@njit(cache=True)
def lower_tail(sorted_values: np.ndarray, count: int, value: float) -> float:
    """-log10 P(X <= value) under the window's distribution."""
    xs = sorted_values
    k = TAIL_K
    at_most = np.searchsorted(xs[:count], value, side="right")
    p = float((at_most + 1.0) / (count + 1.0))
    if count >= 4 * k and at_most < k:
        edge = xs[k - 1]
        scale = max(
            (xs[2 * k - 1] - edge) / math.log(2.0),
            (xs[count // 2] - edge) / math.log(count / (2.0 * k)),
        )
        if value < edge and scale > 1e-9 * (xs[count - 1] - xs[0]):
            p = min(p, k / (count + 1.0) * math.exp(-(edge - value) / scale))
    return _lambda(p)


@njit(cache=True)
def mid_rank(sorted_values: np.ndarray, count: int, value: float) -> float:
    """Probability integral transform of `value`: its mid-rank in (0, 1) (ties share the
    middle of their ranks, so a quantized series is ranked fairly)."""
    below = np.searchsorted(sorted_values[:count], value, side="left")
    upto = np.searchsorted(sorted_values[:count], value, side="right")
    return (below + 0.5 * (upto - below) + 0.5) / (count + 1.0)


@njit(cache=True)
def gaussian_two_sided(z: float) -> float:
    """-log10 P(|Z| >= |z|) for a standard normal Z."""
    return _lambda(math.erfc(abs(z) / math.sqrt(2.0)))
