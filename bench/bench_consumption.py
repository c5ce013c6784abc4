"""Benchmark: fleet consumption analysis and the usage day scorer vs an STL detector.

Run: .venv/bin/python bench/bench_consumption.py [--accounts 10000 100000]
     [--warehouse 10000 100000]

Fleet lines: `analyze_fleet` on columns shaped like `fleet_columns_from_warehouse`'s: 365
days of usage generated per account, of which the analysis window (`history_days`) is
handed over, as the loader reads it (account numbers, int days, float32 values). Each size
runs in a fresh process so its peak RSS is its own; "analysis +X MB" is the peak above the
RSS with the inputs loaded. CPU = process CPU time of all threads (the machine is shared).
Warehouse lines: `fleet_columns_from_warehouse` + `analyze_fleet` on a DuckDB warehouse made
by the data agent's `seed_warehouse` (seed 7, 365 days), cached as
var/bench/consumption_<accounts>.duckdb and reused.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import psutil

from bench.consumption_fleet.fleet import FleetColumns, analyze_fleet
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.calendar import from_day
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.inputs import to_day
from services.decision_agent.consumption.usage_series import score_series

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "services" / "decision_agent" / "rules"
AS_OF = date(2025, 6, 30)
DAYS = 365


def synthetic_columns(accounts: int, window_days: int, seed: int = 0) -> FleetColumns:
    """Weekday-seasonal usage over 365 days with per-account level and trend, plus side
    tables; the usage rows handed over are the analysis window's, with each account's
    first usage day, in the loader's layout (metric-major float32, account numbers)."""
    rng = np.random.default_rng(seed)
    first = to_day(AS_OF) - DAYS + 1
    day = np.arange(DAYS)
    weekday = (first + day + 3) % 7
    season = np.where(weekday >= 5, 0.25, 1.0).astype(np.float32)
    level = rng.lognormal(7, 2, accounts).astype(np.float32)
    slope = rng.normal(0, 0.5, accounts).astype(np.float32)
    query = level[:, None] * season[None, :]
    query *= np.clip(1 + slope[:, None] * (day / DAYS).astype(np.float32)[None, :], 0, None)
    query *= rng.lognormal(0, 0.1, (accounts, DAYS)).astype(np.float32)
    window = query[:, DAYS - window_days :].reshape(-1)
    del query
    scale = np.array([1, 1e-2, 2e-2, 1e6, 1e5, 5e-2, 1e-3], dtype=np.float32)
    by_metric = scale[:, None] * window[None, :]
    del window
    ids = [f"acc-{k:07d}" for k in range(accounts)]
    n_side = accounts // 2
    ticket_acc = rng.integers(0, accounts, n_side)
    agreement_acc = rng.integers(0, accounts, n_side)
    call_acc = rng.integers(0, accounts, accounts)
    as_of = to_day(AS_OF)
    dates = np.array([from_day(d) for d in range(as_of - 400, as_of + 400)], dtype="datetime64[D]")
    return FleetColumns(
        account_ids=ids,
        customer_class=np.array(["commit", "plg", "prospect"])[rng.integers(0, 3, accounts)],
        created_at=np.full(accounts, np.datetime64("NaT"), dtype="datetime64[D]"),
        has_opportunity=rng.random(accounts) < 0.5,
        usage_account=np.repeat(np.arange(accounts, dtype=np.int32), window_days),
        usage_date=np.tile((first + day[DAYS - window_days :]).astype(np.int32), accounts),
        usage_values=by_metric.T,
        first_usage=np.full(accounts, first, dtype=np.int64).astype("datetime64[D]"),
        ticket_account=[ids[k] for k in ticket_acc],
        ticket_id=[f"t{k}" for k in range(n_side)],
        ticket_created=dates[400 - rng.integers(0, 120, n_side)],
        ticket_priority=np.array(["P1", "P2", "P3", "P4"])[rng.integers(0, 4, n_side)],
        agreement_account=[ids[k] for k in agreement_acc],
        agreement_id=[f"a{k}" for k in range(n_side)],
        agreement_start=dates[400 - rng.integers(0, 300, n_side)],
        agreement_end=dates[400 + rng.integers(0, 365, n_side)],
        agreement_amount=rng.uniform(1e4, 1e6, n_side),
        agreement_term_months=np.full(n_side, 12),
        agreement_active=np.ones(n_side, dtype=np.bool_),
        call_account=[ids[k] for k in call_acc],
        call_id=[f"c{k}" for k in range(accounts)],
        call_start=dates[400 - rng.integers(0, 60, accounts)],
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def bench_fleet(accounts: int) -> None:
    """One size, in this process (called in a child process by `main`)."""
    rules = load_consumption_rules(RULES_DIR)
    columns = synthetic_columns(accounts, rules.history_days)
    loaded = rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    result = analyze_fleet(columns, AS_OF, rules)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    flagged = int(np.any(np.stack(list(result.flags.values())), axis=0).sum())
    print(
        f"fleet {accounts:>7,} accounts x {DAYS} days: {elapsed:6.2f} s "
        f"(CPU {cpu:.2f} s; {accounts / elapsed:,.0f} accounts/s), {flagged:,} flagged; "
        f"peak RSS {peak_rss_mb():,.0f} MB (inputs {loaded:,.0f} MB, "
        f"analysis +{peak_rss_mb() - loaded:,.0f} MB)",
        flush=True,
    )


def warehouse_path(accounts: int) -> Path:
    """A seeded warehouse of `accounts` x 365 days, generated once and reused."""
    path = ROOT / "var" / "bench" / f"consumption_{accounts}.duckdb"
    if not path.exists():
        from demo.seed import seed_warehouse

        start = time.perf_counter()
        seed_warehouse(path, accounts=accounts, days=DAYS, seed=7, as_of=AS_OF)
        print(f"  (seeded {path.name} in {time.perf_counter() - start:.0f} s)", flush=True)
    return path


def bench_warehouse_fleet(accounts: int) -> None:
    """Load every account's inputs from the DuckDB warehouse, then analyze the fleet."""
    from bench.consumption_fleet.loader import (
        fleet_columns_from_warehouse,
    )
    from services.data_agent.warehouse import DuckDBWarehouse

    rules = load_consumption_rules(RULES_DIR)
    path = warehouse_path(accounts)
    base = rss_mb()
    with DuckDBWarehouse(path) as warehouse:
        start, cpu = time.perf_counter(), time.process_time()
        columns = fleet_columns_from_warehouse(warehouse, AS_OF, rules)
        loaded = time.perf_counter() - start
        result = analyze_fleet(columns, AS_OF, rules)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    flagged = int(np.any(np.stack(list(result.flags.values())), axis=0).sum())
    print(
        f"fleet from the warehouse {accounts:>7,} accounts x {DAYS} days: {total:6.2f} s "
        f"(load {loaded:.2f} s + analysis {total - loaded:.2f} s; CPU {cpu:.2f} s), "
        f"{flagged:,} flagged; "
        f"peak RSS {peak_rss_mb():,.0f} MB (+{peak_rss_mb() - base:,.0f} MB)",
        flush=True,
    )


def _child(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bench.bench_consumption", *args], check=True, cwd=ROOT)


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
    print(f"usage day scorer (score_series, one series at a time): {ours:,.0f} points/s")
    print(f"STL detector (statsmodels, causal refit):      {stl:,.0f} points/s")
    print(f"ratio: {ours / stl:,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--warehouse", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--one-fleet", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one-warehouse", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_fleet:
        bench_fleet(args.one_fleet)
        return
    if args.one_warehouse:
        bench_warehouse_fleet(args.one_warehouse)
        return
    bench_detector()
    for accounts in args.accounts:
        _child("--one-fleet", str(accounts))
    for accounts in args.warehouse:
        _child("--one-warehouse", str(accounts))


if __name__ == "__main__":
    main()
