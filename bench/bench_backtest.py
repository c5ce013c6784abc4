"""Benchmark: the honest deal backtest, deals scored per second.

Run: .venv/bin/python bench/bench_backtest.py [--accounts 1000] [--resamples 1000]
Seeds a demo warehouse of `--accounts` accounts (about 1.1 closed deals per account), then
runs `run_backtest` on every closed deal: each is rebuilt as it stood 30 days before it
closed (the data agent's queries against DuckDB) and scored, then AUC with bootstrap
intervals, baselines, calibration and the leakage guard are computed. Figures: deals
scored per second for the whole run, and the share of the time spent in the statistics.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.seed import seed_warehouse  # noqa: E402
from services.cli.backtest.run import run_backtest  # noqa: E402
from services.common.stages import load_stage_model  # noqa: E402
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse  # noqa: E402
from services.decision_agent.deal_quality.analyzer import (  # noqa: E402
    DealQualityAnalyzer,
    load_deal_rules,
)
from services.decision_agent.deal_quality.rule_models import BacktestRules  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--resamples", type=int, default=1_000)
    args = parser.parse_args()
    rules = BacktestRules(kind="deal_backtest", version=1, bootstrap_resamples=args.resamples)
    analyzer = DealQualityAnalyzer(load_deal_rules())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "backtest.duckdb"
        seed_warehouse(path, accounts=args.accounts, days=120, seed=7, as_of=date(2026, 11, 1))
        scored_at: list[float] = []
        with DuckDBWarehouse(path) as warehouse:
            started = time.perf_counter()
            report = run_backtest(
                warehouse,
                analyzer,
                load_stage_model(),
                rules,
                progress=lambda i, n: scored_at.append(time.perf_counter()) if i == n - 1 else None,
            )
            elapsed = time.perf_counter() - started
    scoring = (scored_at[-1] - started) if scored_at else elapsed
    deals = len(report.deals)
    print(f"closed deals scored: {deals:,} deals")
    print(f"backtest seconds: {elapsed:.1f} s")
    print(f"backtest deals/s: {deals / elapsed:,.0f} deals/s")
    print(f"statistics share: {100 * (elapsed - scoring) / elapsed:.0f} %")
    auc = report.auc["deal_quality"]
    print(f"auc: {auc.render()}")


if __name__ == "__main__":
    main()
