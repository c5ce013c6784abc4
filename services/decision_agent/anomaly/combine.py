"""One anomaly likelihood for a group of series observed together.

A machine's sensor channels, or the metrics of one account, are scored one series at a time;
an event may show on some of them only. The group's likelihood at each row is the strongest
channel's, corrected for having looked at k channels (Bonferroni: the smallest p-value times
k, i.e. ``lambda_max - log10(k)``, floored at 0). A group of 8 channels then alerts on one
threshold exactly as often as a single series would on normal data, so one threshold serves
a fleet of single series and of groups alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def combined_likelihood(likelihoods: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Row-wise ``max_k lambda_k - log10(k)`` (>= 0) over aligned channels; a row no channel
    scored (all NaN) gets 0."""
    if not likelihoods:
        raise ValueError("no channel to combine")
    stacked = np.vstack([np.asarray(x, dtype=np.float64) for x in likelihoods])
    filled = np.where(np.isnan(stacked), 0.0, stacked)
    best = filled.max(axis=0)
    return np.maximum(best - math.log10(len(likelihoods)), 0.0)
