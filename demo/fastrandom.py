"""A seeded scalar random source for the per-row CRM generator.

numpy's Generator is fast for arrays (usage) but slow per scalar call (~4 us); the CRM
rows draw hundreds of scalars per account, so they use the stdlib Mersenne Twister with
the numpy-like methods the generator needs. Seeded by integers: deterministic across runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class FastRandom(random.Random):
    def __init__(self, *key: int) -> None:
        super().__init__(hash_key(key))

    def integers(self, low: int, high: int | None = None) -> int:
        """Like numpy: an int in [low, high) (or [0, low) with one argument)."""
        return self.randrange(low) if high is None else self.randrange(low, high)

    def normal(self, mean: float, sd: float) -> float:
        return self.gauss(mean, sd)

    def poisson(self, lam: float) -> int:
        """Knuth's method; fine for the small rates used here."""
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.random()
            if p <= limit:
                return k
            k += 1

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.randrange(len(seq))]

    def sample_k(self, seq: Sequence[Any], k: int) -> list[Any]:
        return self.sample(list(seq), k)


def hash_key(key: tuple[int, ...]) -> int:
    """A stable integer from a tuple of ints (Python's hash() is salted per process)."""
    out = 0
    for part in key:
        out = (out * 1_000_003 + int(part)) % (2**61 - 1)
    return out
