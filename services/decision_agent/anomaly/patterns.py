"""Sequence (shape) novelty: how surprising the current point is given the few before it.

Each point becomes a symbol from two ranks, so the alphabet means the same on every series:

* its level: the quantile bin of the value among the detector's reference values
  (`LEVEL_BINS` equal-probability bins);
* its move: the size of the step from the previous value ranked among the recent steps,
  with its sign: flat (below the median step), up or down, big up or big down (beyond the
  90th percentile) - `MOVES` classes.

The context is the previous `order` symbols. Counts of (context, symbol) and of contexts are
kept for the whole series; the surprise of a point is -log10 P(symbol | context) with
Laplace smoothing, (count(context, symbol) + 1) / (count(context) + alphabet). A pattern the
series has produced before is no longer novel: the counts adapt to it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LEVEL_BINS = 3  # odd: the median rank has a bin of its own, so -x has the mirrored bins
MOVES = 5  # big down, down, flat, up, big up
ALPHABET = LEVEL_BINS * MOVES
FLAT_BELOW = 0.5  # a step smaller than the median step is flat
BIG_ABOVE = 0.9  # a step beyond the 90th percentile is big


@njit(cache=True)
def symbol(level_rank: float, step: float, step_rank: float) -> int:
    """The symbol of a point from its value's mid-rank among the reference values and its
    step's mid-rank among recent step sizes (both in (0, 1)); `step` gives the sign."""
    # bins mirror each other (rank u and 1 - u land in bins b and LEVEL_BINS - 1 - b), so
    # a series and its negative have the same patterns
    # a series and its negative have the same patterns (1e-9: a rank on a bin edge goes to
    # the inner bin on both sides, whatever the rounding of 1 - u)
    if level_rank < 0.5:
        level = int(level_rank * LEVEL_BINS + 1e-9)
    else:
        level = LEVEL_BINS - 1 - int((1.0 - level_rank) * LEVEL_BINS + 1e-9)
    if step_rank < FLAT_BELOW or step == 0.0:
        move = 2
    elif step_rank < BIG_ABOVE:
        move = 3 if step > 0 else 1
    else:
        move = 4 if step > 0 else 0
    return level * MOVES + move


@njit(cache=True)
def contexts(order: int) -> int:
    return ALPHABET**order


@njit(cache=True)
def surprise_and_learn(
    pair_counts: np.ndarray, context_counts: np.ndarray, context: int, sym: int
) -> float:
    """-log10 P(sym | context) from the counts so far (Laplace), then count this pair."""
    at = context * ALPHABET + sym
    p = (pair_counts[at] + 1.0) / (context_counts[context] + ALPHABET)
    pair_counts[at] += 1
    context_counts[context] += 1
    return -math.log10(p)


@njit(cache=True)
def next_context(context: int, sym: int, order: int) -> int:
    """The context after `sym`: the last `order` symbols as one number."""
    return (context * ALPHABET + sym) % (ALPHABET**order)
