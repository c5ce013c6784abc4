"""Benchmark: warehouse seed throughput, peak memory, and fleet-screen time.

Run: .venv/bin/python bench/bench_warehouse.py [--accounts 100000] [--days 365]
     [--screen 10000 100000] [--dir var/bench]
Seeds a warehouse of `--accounts` accounts (rows/s over every table), then times the fleet
screen on warehouses of each `--screen` size (the largest reuses the seeded one when the
sizes match). Peak memory is the process's max RSS (it includes DuckDB's own memory).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.seed import seed_warehouse  # noqa: E402
from services.data_agent.fleet import fleet_screen  # noqa: E402
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse  # noqa: E402

AS_OF = date(2025, 6, 30)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def seed(path: Path, accounts: int, days: int) -> tuple[float, int]:
    started = time.perf_counter()
    truth = seed_warehouse(path, accounts=accounts, days=days, seed=7, as_of=AS_OF)
    return time.perf_counter() - started, sum(truth.summary["rows"].values())


def screen(path: Path, repeats: int = 3) -> tuple[float, int]:
    with DuckDBWarehouse(path) as wh:
        best, found = float("inf"), 0
        for _ in range(repeats):
            started = time.perf_counter()
            found = len(fleet_screen(wh, as_of=AS_OF))
            best = min(best, time.perf_counter() - started)
    return best, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--screen", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    main_path = args.dir / f"warehouse_{args.accounts}.duckdb"
    elapsed, rows = seed(main_path, args.accounts, args.days)
    print(
        f"seed: {args.accounts:,} accounts x {args.days} days = {rows:,} rows in "
        f"{elapsed:.1f}s -> {rows / elapsed:,.0f} rows/s; "
        f"file {main_path.stat().st_size / 2**20:,.0f} MiB"
    )
    print(f"peak RSS after seed: {peak_rss_mb():,.0f} MiB")

    for size in args.screen:
        path = main_path if size == args.accounts else args.dir / f"warehouse_{size}.duckdb"
        if path != main_path:
            seed(path, size, args.days)
        took, found = screen(path)
        print(
            f"fleet screen: {size:,} accounts x {args.days} days in {took:.2f}s "
            f"({found:,} accounts flagged)"
        )
    print(f"peak RSS: {peak_rss_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
