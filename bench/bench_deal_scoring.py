"""Deals scored per second in one process (target >= 2,000 deals/s).

Builds a demo warehouse in a temporary folder, loads every deal's dataset once (not timed),
then times `DealQualityAnalyzer.analyze` over all deals: once cold (a fresh analyzer, every
call scanned for the first time) and for several warm rounds (re-scoring the same deals, as
the scheduled scans do). Rates are per CPU second of this process (time.process_time) and
the best warm round is reported, so other load on a shared machine distorts them less.

    .venv/bin/python bench/bench_deal_scoring.py [--accounts 200] [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.dataset import Dataset, PreliminaryFinding
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.generator.seed import seed_warehouse
from services.data_agent.warehouse.queries import LIST_OPPORTUNITIES
from services.decision_agent.deal_quality.analyzer import (
    DealQualityAnalyzer,
    load_deal_rules,
)


def load_datasets(accounts: int) -> list[tuple[Dataset, list[PreliminaryFinding]]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        seed_warehouse(path, accounts=accounts, days=365, seed=11, as_of=date(2026, 11, 1))
        with DuckDBWarehouse(path) as warehouse:
            repository = DatasetRepository(warehouse)
            rows = warehouse.fetch_all(LIST_OPPORTUNITIES, {"limit": 1_000_000})
            loaded = []
            for row in rows:
                dataset, _, findings = repository.deal_dataset(
                    str(row["sf_account_id"]), str(row["opportunity_id"])
                )
                loaded.append((dataset, findings))
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    deals = load_datasets(args.accounts)
    rules = load_deal_rules()
    DealQualityAnalyzer(rules).analyze("warm", *deals[0])  # imports, regex compilation

    # Cold: a fresh analyzer, every call's text scanned for the first time.
    analyzer = DealQualityAnalyzer(rules)
    started = time.process_time()
    for dataset, findings in deals:
        analyzer.analyze("bench", dataset, findings)
    cold_rate = len(deals) / (time.process_time() - started)

    # Warm: the same deals re-scored (the scheduled daily case); call mentions are cached.
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    round_times = []
    for _ in range(args.rounds):
        started = time.process_time()
        for dataset, findings in deals:
            analyzer.analyze("bench", dataset, findings)
        round_times.append(time.process_time() - started)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    warm_rate = len(deals) / min(round_times)
    median_rate = len(deals) / sorted(round_times)[len(round_times) // 2]
    calls = sum(len(d.calls) for d, _ in deals) / len(deals)
    print(f"deals: {len(deals)} (avg {calls:.1f} customer calls each), rounds: {args.rounds}")
    print(f"deal scoring cold (first scan of every call): {cold_rate:,.0f} deals/s")
    print(
        f"deal scoring warm (re-scoring, call mentions cached): best round {warm_rate:,.0f} "
        f"deals/s, median {median_rate:,.0f} deals/s "
        f"(target >= 2,000: {'OK' if warm_rate >= 2000 else 'BELOW TARGET'})"
    )


if __name__ == "__main__":
    main()
