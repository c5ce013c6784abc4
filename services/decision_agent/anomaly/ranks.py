"""Sliding sorted windows and tail probabilities, compiled with numba for the detector.

A window holds the last `capacity` values of a stream twice: in arrival order (a ring, to
know which value leaves) and sorted (to rank a new value with a binary search). Inserting
costs one memmove of at most `capacity` floats.

Tail probabilities are empirical with a +1 prior: a value beyond everything seen in n points
has probability 1/(n+1), where a rank-based tail saturates. How far beyond is modelled
explicitly: the excess over the most extreme value seen follows an exponential tail, whose
scale comes from the spacing of the tail quantiles (k and 2k from the end), but is never
smaller than the average decay of that half of the distribution (median to the k-th value):
a tail made of repeated values (a quantized series) then cannot make the first value past
it look impossibly rare. A value inside the range seen keeps its empirical probability (a
value seen before is never scored as impossible).
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
def _excess_scale(edge: float, kth: float, two_kth: float, middle: float, count: int) -> float:
    """Scale of the exponential tail beyond the most extreme value seen: the spacing of the
    tail quantiles (k-th and 2k-th from the end), never below the average decay from the
    median to the k-th value (a tail of repeated values - a quantized series - must not make
    a value just past it look impossible), nor below the average decay from the median to
    the extreme itself (probability 1/2 there, 1/(n+1) at the extreme: a series on two or
    three values has no tail spacing at all, and one quantum more is not a 1e-30 event)."""
    return max(
        (kth - two_kth) / math.log(2.0),
        (kth - middle) / math.log(count / (2.0 * TAIL_K)),
        (edge - middle) / math.log((count + 1.0) / 2.0),
    )


@njit(cache=True)
def upper_tail(sorted_values: np.ndarray, count: int, value: float) -> float:
    """-log10 P(X >= value) under the window's distribution."""
    xs = sorted_values
    k = TAIL_K
    at_least = count - np.searchsorted(xs[:count], value, side="left")
    p = float((at_least + 1.0) / (count + 1.0))
    edge = xs[count - 1]
    if count >= 4 * k and value > edge:
        scale = _excess_scale(edge, xs[count - k], xs[count - 2 * k], xs[count // 2], count)
        if scale > 1e-9 * (edge - xs[0]):
            p *= math.exp(-(value - edge) / scale)
    return _lambda(p)


@njit(cache=True)
def lower_tail(sorted_values: np.ndarray, count: int, value: float) -> float:
    """-log10 P(X <= value) under the window's distribution."""
    xs = sorted_values
    k = TAIL_K
    at_most = np.searchsorted(xs[:count], value, side="right")
    p = float((at_most + 1.0) / (count + 1.0))
    edge = xs[0]
    if count >= 4 * k and value < edge:
        # the mirror image of upper_tail's quantiles (so -x has the same tails as x)
        middle = xs[(count - 1) // 2]
        scale = _excess_scale(-edge, -xs[k - 1], -xs[2 * k - 1], -middle, count)
        if scale > 1e-9 * (xs[count - 1] - edge):
            p *= math.exp(-(edge - value) / scale)
    return _lambda(p)


@njit(cache=True)
def two_sided_tail(sorted_values: np.ndarray, count: int, value: float) -> float:
    """-log10 P(X at least as far out as `value`, either side) = -log10 of twice the smaller
    one-sided tail, at least 0."""
    one_sided = max(
        upper_tail(sorted_values, count, value), lower_tail(sorted_values, count, value)
    )
    return max(0.0, one_sided - math.log10(2.0))


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
