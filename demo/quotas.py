"""Exact-proportion label assignment: the ground truth's proportions are quotas, not luck."""

from __future__ import annotations

import numpy as np


def quota_labels(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    """`n` labels in the given shares (largest remainder rounding), in random order.

    When `n` is at least the number of labels, every label with a positive share appears
    at least once, so even a tiny demo contains every injected case.
    """
    labels = list(shares)
    total = sum(shares.values())
    exact = np.array([shares[k] / total * n for k in labels])
    counts = np.floor(exact).astype(int)
    if n >= len(labels):
        counts = np.maximum(counts, (exact > 0).astype(int))
    while counts.sum() < n:
        counts[int(np.argmax(exact - counts))] += 1
    while counts.sum() > n:
        counts[int(np.argmax(counts - exact))] -= 1
    out = np.repeat(np.array(labels, dtype=object), counts)
    rng.shuffle(out)
    return out
