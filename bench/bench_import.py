"""Benchmark: importing a CRM export with a mapping (rows/s) and its peak memory.

Run: .venv/bin/python bench/bench_import.py [--opportunities 1000000] [--dir var/bench]
Writes a generic pipeline export at run time (never committed): sales_pipeline.csv with
`--opportunities` deals (account, owner, product, stage, engage/close dates, value; a few
percent without an account or with the 'GTXPro' spelling, as real exports have), plus
accounts, products and sales-team files; then imports it with the generic-pipeline preset
(derived stage history, catalogs, every data-quality check, temp file and rename) into a
new DuckDB warehouse. Figures: pipeline rows per second end to end, warehouse rows
written, peak RSS of the process (DuckDB's memory included).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.data_agent.warehouse.loader import LoadOptions, import_files  # noqa: E402
from services.data_agent.warehouse.mapping import load_mapping  # noqa: E402

PRODUCTS = ["GTX Basic", "GTX Pro", "MG Special", "MG Advanced", "GTX Plus Basic", "GK520"]
STAGES = ["Prospecting", "Engaging", "Won", "Lost"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_export(folder: Path, deals: int, accounts: int = 5_000, agents: int = 300) -> None:
    """A deterministic export of `deals` rows, written with numpy + pyarrow (seconds)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(13)
    folder.mkdir(parents=True, exist_ok=True)
    account_names = np.array([f"Account {i:05d}" for i in range(accounts)])
    agent_names = np.array([f"Agent {i:04d}" for i in range(agents)])
    stage = rng.choice(STAGES, size=deals, p=[0.1, 0.15, 0.45, 0.30])
    engage = np.datetime64("2016-01-01") + rng.integers(0, 700, size=deals).astype("timedelta64[D]")
    close = engage + rng.integers(5, 140, size=deals).astype("timedelta64[D]")
    closed = np.isin(stage, ["Won", "Lost"])
    account = account_names[rng.integers(0, accounts, size=deals)].astype(object)
    account[rng.random(deals) < 0.03] = None  # deals without an account
    product = np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), size=deals)].astype(object)
    product[rng.random(deals) < 0.02] = "GTXPro"  # the pipeline's own spelling
    value = np.where(stage == "Won", rng.integers(50, 30_000, size=deals), 0).astype(object)
    value[~closed] = None
    pipeline = pa.table(
        {
            "opportunity_id": [f"D{i:09d}" for i in range(deals)],
            "sales_agent": agent_names[rng.integers(0, agents, size=deals)],
            "product": pa.array(product, type=pa.string()),
            "account": pa.array(account, type=pa.string()),
            "deal_stage": stage,
            "engage_date": pa.array(
                [
                    None if s == "Prospecting" else str(d)
                    for s, d in zip(stage, engage, strict=True)
                ],
                type=pa.string(),
            ),
            "close_date": pa.array(
                [str(d) if c else None for c, d in zip(closed, close, strict=True)],
                type=pa.string(),
            ),
            "close_value": pa.array(value, type=pa.int64()),
        }
    )
    pacsv.write_csv(pipeline, folder / "sales_pipeline.csv")
    pacsv.write_csv(
        pa.table(
            {
                "account": account_names,
                "sector": np.array(["software", "retail", "medical"])[np.arange(accounts) % 3],
                "revenue": np.round(rng.uniform(1, 5000, size=accounts), 2),
                "employees": rng.integers(10, 20_000, size=accounts),
            }
        ),
        folder / "accounts.csv",
    )
    pacsv.write_csv(
        pa.table(
            {
                "product": PRODUCTS,
                "series": ["GTX", "GTX", "MG", "MG", "GTX", "GK"],
                "sales_price": [550, 4821, 55, 3393, 1096, 26768],
            }
        ),
        folder / "products.csv",
    )
    pacsv.write_csv(pa.table({"sales_agent": agent_names}), folder / "sales_teams.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench" / "import")
    args = parser.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    export = args.dir / "export"
    started = time.perf_counter()
    write_export(export, args.opportunities)
    print(f"export written: {time.perf_counter() - started:.1f} s")
    dest = args.dir / "imported.duckdb"
    started = time.perf_counter()
    result = import_files(export, load_mapping("generic-pipeline"), dest, LoadOptions())
    elapsed = time.perf_counter() - started
    written = sum(result.counts.values())
    print(f"opportunities: {args.opportunities:,}")
    print(f"import seconds: {elapsed:.1f} s")
    print(f"import rows/s: {args.opportunities / elapsed:,.0f} pipeline rows/s")
    print(f"warehouse rows written: {written:,} rows")
    print(f"warnings reported: {result.report.warnings:,} problems")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")
    shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
