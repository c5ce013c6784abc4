"""Benchmark: warehouse seed throughput, peak memory, fleet-screen time, dataset reads.

Run: .venv/bin/python bench/bench_warehouse.py [--accounts 100000] [--days 365]
     [--screen 10000 100000] [--dir var/bench] [--subjects 500] [--batches 1 50 500]
     [--sample 100] [--repeats 3]
Seeds a warehouse of `--accounts` accounts (rows/s over every table), then times the fleet
screen on warehouses of each `--screen` size (the largest reuses the seeded one when the
sizes match). Peak memory is the process's max RSS (it includes DuckDB's own memory).

Dataset reads (the data agent's warehouse stage), on the seeded warehouse: `--subjects`
subjects of the demo mix (half deal-quality: an open deal and its account; half consumption:
an account), built one at a time (the per-subject queries) and in batches of each
`--batches` size (one set-based query per table, `DatasetRepository.reading_ahead`), on DuckDB
and on the data agent's row-store copy (docs/warehouse-replica.md): warehouse
queries per flow, and wall and CPU ms per subject (CPU: the whole process, DuckDB's threads
included), as the min-max range over `--repeats` runs (this box is shared: figures move).
The slow paths (one at a time, batches smaller than `--sample`) run over the first
`--sample` subjects only: their cost per subject does not depend on how many there are.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collections.abc import Callable, Iterator, Sequence  # noqa: E402

from contracts.common import AnalysisType  # noqa: E402
from contracts.series import UsageSeries  # noqa: E402
from contracts.trigger import RequestParameters  # noqa: E402
from demo.seed import seed_warehouse  # noqa: E402
from services.data_agent.builders import (  # noqa: E402
    DATASET_BUILDERS,
    DatasetBuilder,
    open_opportunities,
    reading_ahead,
)
from services.data_agent.datasets import DatasetRepository  # noqa: E402
from services.data_agent.fleet import fleet_screen  # noqa: E402
from services.data_agent.warehouse.base import Columns, Params, Row, Warehouse  # noqa: E402
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse  # noqa: E402
from services.data_agent.warehouse.queries import Query  # noqa: E402
from services.data_agent.warehouse.replica import ReplicatedWarehouse, open_replica  # noqa: E402

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


class CountingWarehouse:
    """A warehouse that counts the queries it runs."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.engine = inner.engine
        self.max_bound_ids = inner.max_bound_ids
        self.queries = 0

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        self.queries += 1
        return self.inner.fetch_all(query, params)

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = 10_000
    ) -> Iterator[list[Row]]:
        self.queries += 1
        return self.inner.fetch_chunks(query, params, chunk_rows)

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        self.queries += 1
        return self.inner.fetch_columns(query, params)

    def close(self) -> None:
        self.inner.close()


class CountingCopy(CountingWarehouse):
    """The copy, counting its packed usage reads as the queries they are."""

    def __init__(self, inner: ReplicatedWarehouse) -> None:
        super().__init__(inner)
        self.copy = inner

    def usage_series(
        self, account_ids: Sequence[str], after: date, as_of: date
    ) -> dict[str, UsageSeries]:
        self.queries += 1
        return self.copy.usage_series(account_ids, after, as_of)


Request = tuple[DatasetBuilder, RequestParameters]


def demo_mix(repository: DatasetRepository, subjects: int) -> list[Request]:
    """Half deal-quality (an open deal with its account), half consumption (an account)."""
    deals = open_opportunities(repository.warehouse, repository.stages)
    accounts = sorted({a for a, _ in deals})
    deal, account = (
        DATASET_BUILDERS[AnalysisType.DEAL_QUALITY],
        DATASET_BUILDERS[AnalysisType.CONSUMPTION],
    )
    mix: list[Request] = []
    for i in range(subjects):
        if i % 2 == 0:
            a, o = deals[(i // 2) % len(deals)]
            mix.append((deal, RequestParameters(account_id=a, opportunity_id=o)))
        else:
            mix.append((account, RequestParameters(account_id=accounts[(i // 2) % len(accounts)])))
    return mix


def one_by_one(repository: DatasetRepository, requests: list[Request]) -> None:
    for builder, p in requests:
        builder(repository, p)


def in_batches(size: int) -> Callable[[DatasetRepository, list[Request]], None]:
    def run(repository: DatasetRepository, requests: list[Request]) -> None:
        for start in range(0, len(requests), size):
            chunk = requests[start : start + size]
            batch = reading_ahead(repository, chunk)
            for builder, p in chunk:
                builder(batch, p)

    return run


def dataset_reads(path: Path, subjects: int, batches: list[int], sample: int, repeats: int) -> None:
    """Queries per flow and ms per subject, per-subject vs set-based, on DuckDB and on the
    data agent's row-store copy (see module doc)."""
    with DuckDBWarehouse(path) as duck, tempfile.TemporaryDirectory() as folder:
        made = time.perf_counter()
        copy = ReplicatedWarehouse(
            duck, lambda stopping: open_replica(duck, path, Path(folder), stopping)
        )
        if not copy.wait_ready():
            raise SystemExit("the row-store copy could not be made (see the log)")
        assert copy.replica_path is not None
        print(
            f"row-store copy: made in {time.perf_counter() - made:.1f}s, "
            f"{copy.replica_path.stat().st_size / 2**20:,.0f} MiB"
        )
        print(f"dataset reads: demo mix, {repeats} runs each, min-max")
        print(
            "| reads on | path | subjects | queries per flow | wall ms per subject "
            "| CPU ms per subject |"
        )
        print("|---|---|---|---|---|---|")
        for engine, warehouse in (
            ("DuckDB", CountingWarehouse(duck)),
            ("row-store copy", CountingCopy(copy)),
        ):
            _dataset_reads(engine, warehouse, subjects, batches, sample, repeats)


def _dataset_reads(
    engine: str,
    warehouse: CountingWarehouse,
    subjects: int,
    batches: list[int],
    sample: int,
    repeats: int,
) -> None:
    repository = DatasetRepository(warehouse)
    repository.default_as_of()  # read once per process, as in the service
    requests = demo_mix(repository, subjects)
    modes = [("per-subject", one_by_one, min(sample, subjects))] + [
        (f"set-based, batch {size}", in_batches(size), min(subjects, max(sample, size)))
        for size in batches
    ]
    for label, run, count in modes:
        walls, cpus = [], []
        for _ in range(repeats):
            warehouse.queries = 0
            wall, cpu = time.perf_counter(), time.process_time()
            run(repository, requests[:count])
            walls.append((time.perf_counter() - wall) * 1000 / count)
            cpus.append((time.process_time() - cpu) * 1000 / count)
        per_flow = warehouse.queries / count
        print(
            f"| {engine} | {label} | {count} | {per_flow:.2f} "
            f"| {min(walls):.2f}-{max(walls):.2f} | {min(cpus):.2f}-{max(cpus):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--screen", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 50, 500])
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
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
    if args.subjects:
        dataset_reads(main_path, args.subjects, args.batches, args.sample, args.repeats)


if __name__ == "__main__":
    main()
