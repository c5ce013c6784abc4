"""The seed's retry policy: bounded attempts, exponential backoff with +/- jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.1
    backoff_rate: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0 = first retry): min(initial*2**n, max) +/- 10%."""
        base = min(self.initial_delay_s * self.backoff_rate**attempt, self.max_delay_s)
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))
