"""Deals scored per second in one process (target >= 2,000 deals/s).

Builds a demo warehouse in a temporary folder, loads every deal's dataset once (not timed),
then times `DealQualityAnalyzer.analyze` over them for a few rounds.

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
    analyzer = DealQualityAnalyzer(load_deal_rules())
    for dataset, findings in deals[:50]:  # warm-up (regex caches, imports)
        analyzer.analyze("warm", dataset, findings)

    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    started = time.perf_counter()
    for _ in range(args.rounds):
        for dataset, findings in deals:
            analyzer.analyze("bench", dataset, findings)
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    scored = len(deals) * args.rounds
    rate = scored / elapsed
    print(
        f"deal scoring: {scored} deals in {elapsed:.2f} s = {rate:,.0f} deals/s "
        f"({len(deals)} deals x {args.rounds} rounds, avg {len(deals[0][0].calls)} calls in first; "
        f"target >= 2,000) {'OK' if rate >= 2000 else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    main()
