"""Synthetic daily usage with weekends, holidays and injected events of known start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from services.decision_agent.consumption.calendar import SECONDS_PER_DAY, day_number

START = date(2024, 1, 1)
HOLIDAYS = [
    date(2024, month, day)
    for month, day in ((1, 15), (2, 19), (5, 27), (7, 4), (9, 2), (11, 28), (11, 29), (12, 25))
]
EVENT_TYPES = ("stop", "drop", "spike", "level_shift")


@dataclass(frozen=True)
class Event:
    kind: str
    start: int
    length: int


@dataclass(frozen=True)
class Series:
    times_s: np.ndarray
    values: np.ndarray
    events: list[Event]


def daily_series(seed: int, n: int = 300, noise: float = 0.12, event: bool = True) -> Series:
    """Weekday level, weekends at 25%, holidays like weekends, one injected event."""
    rng = np.random.default_rng(seed)
    days = [START + timedelta(k) for k in range(n)]
    off = np.array([d.weekday() >= 5 or d in HOLIDAYS for d in days])
    level = rng.uniform(50, 50_000)
    values = level * np.where(off, 0.25, 1.0) * rng.lognormal(0, noise, n)
    kind = EVENT_TYPES[seed % len(EVENT_TYPES)]
    start = int(rng.integers(120, n - 40))
    # Stops, drops and shifts persist (churn does not bounce back); a spike is one day.
    length = 1 if kind == "spike" else n - start
    factor = {"stop": 0.0, "drop": 0.3, "spike": 4.0, "level_shift": 0.45}[kind]
    if event:
        values[start : start + length] *= factor
    times = np.array([day_number(d) * SECONDS_PER_DAY for d in days], dtype=np.float64)
    return Series(times, values, [Event(kind, start, length)] if event else [])
