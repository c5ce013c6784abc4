"""Benchmark: fleet consumption analysis and the anomaly detector vs an STL detector.

Run: .venv/bin/python bench/bench_consumption.py [--accounts 10000 100000]
Usage matrices are generated directly as arrays (365 days per account; the analysis reads
the last `history_days`). Peak memory is the process's max RSS (psutil / resource).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date
from pathlib import Path

import numpy as np

from services.decision_agent.anomaly import DetectorConfig, score_series
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.inputs import (
    USAGE_METRICS,
    Agreements,
    Calls,
    FleetInputs,
    Tickets,
    to_day,
)
from services.decision_agent.consumption.pipeline import assess

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2025, 6, 30)
DAYS = 365


def synthetic_inputs(accounts: int, history_days: int, seed: int = 0) -> FleetInputs:
    rng = np.random.default_rng(seed)
    day = np.arange(DAYS)
    weekday = (to_day(AS_OF) - DAYS + 1 + day + 3) % 7
    season = np.where(weekday >= 5, 0.25, 1.0).astype(np.float64)
    level = rng.lognormal(7, 2, accounts)
    trend = 1 + rng.normal(0, 0.5, accounts)[:, None] * (day / DAYS)[None, :]
    query = level[:, None] * season[None, :] * np.clip(trend, 0, None)
    query *= rng.lognormal(0, 0.1, (accounts, DAYS))
    query = query[:, -history_days:]
    scale = np.array([1, 1e-2, 2e-2, 1e6, 1e5, 5e-2, 1e-3])
    usage = np.empty((accounts, history_days, len(USAGE_METRICS)))
    usage[:] = query[:, :, None] * scale
    n_tickets, n_agreements = accounts // 2, accounts // 2
    ticket_days = to_day(AS_OF) - rng.integers(0, 120, n_tickets)
    return FleetInputs(
        account_ids=[f"acc-{k}" for k in range(accounts)],
        as_of_day=to_day(AS_OF),
        usage=usage,
        customer_class=rng.integers(0, 3, accounts).astype(np.int8),
        has_opportunity=rng.random(accounts) < 0.5,
        tenure_days=rng.uniform(30, 900, accounts),
        tickets=Tickets(
            rng.integers(0, accounts, n_tickets),
            ticket_days,
            rng.random(n_tickets) < 0.3,
            [""] * n_tickets,
        ),
        agreements=Agreements(
            rng.integers(0, accounts, n_agreements),
            to_day(AS_OF) - rng.integers(0, 300, n_agreements),
            to_day(AS_OF) + rng.integers(0, 365, n_agreements),
            rng.uniform(1e3, 1e5, n_agreements),
            np.ones(n_agreements, dtype=np.bool_),
            [""] * n_agreements,
        ),
        calls=Calls(
            rng.integers(0, accounts, accounts),
            to_day(AS_OF) - rng.integers(0, 60, accounts),
            [""] * accounts,
        ),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_fleet(accounts: int) -> None:
    rules = load_consumption_rules(ROOT / "services" / "decision_agent" / "rules")
    inputs = synthetic_inputs(accounts, rules.history_days)
    start = time.perf_counter()
    result = assess(inputs, rules)
    elapsed = time.perf_counter() - start
    flagged = int(np.any(np.stack(list(result.flags.values())), axis=0).sum())
    print(
        f"fleet {accounts:>7} accounts x {DAYS} days: {elapsed:6.2f} s "
        f"({accounts / elapsed:,.0f} accounts/s), {flagged} accounts flagged, "
        f"peak RSS {peak_rss_mb():,.0f} MB"
    )


def stl_scores(values: np.ndarray, period: int = 7) -> np.ndarray:
    """A causal STL detector: refit STL on the trailing 8 weeks for every point."""
    from statsmodels.tsa.seasonal import STL

    window = 8 * period
    scores = np.zeros(len(values))
    for t in range(window, len(values)):
        fit = STL(values[t - window : t + 1], period=period, robust=True).fit()
        resid = fit.resid
        mad = np.median(np.abs(resid[:-1] - np.median(resid[:-1]))) * 1.4826 + 1e-9
        scores[t] = min(1.0, abs(resid[-1]) / (4 * mad))
    return scores


def bench_detector(series_count: int = 200, length: int = 365) -> None:
    rng = np.random.default_rng(1)
    times = (to_day(AS_OF) - length + 1 + np.arange(length)) * 86_400.0
    weekday = (times // 86_400 + 3) % 7
    data = [
        1000 * np.where(weekday >= 5, 0.25, 1.0) * rng.lognormal(0, 0.1, length)
        for _ in range(series_count)
    ]
    cfg = DetectorConfig()
    start = time.perf_counter()
    for values in data:
        score_series(np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64), cfg)
    ours = series_count * length / (time.perf_counter() - start)
    stl_count = 3
    start = time.perf_counter()
    for values in data[:stl_count]:
        stl_scores(values)
    stl = stl_count * length / (time.perf_counter() - start)
    print(f"detector (score_series, one series at a time): {ours:,.0f} points/s")
    print(f"STL detector (statsmodels, causal refit):      {stl:,.0f} points/s")
    print(f"ratio: {ours / stl:,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, nargs="*", default=[10_000, 100_000])
    args = parser.parse_args()
    bench_detector()
    for accounts in args.accounts:
        bench_fleet(accounts)


if __name__ == "__main__":
    main()
