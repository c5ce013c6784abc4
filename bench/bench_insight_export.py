"""CPU of one insight-export run (the execution agent's `export_insights` job) per change.

    .venv/bin/python bench/bench_insight_export.py [--insights 200] [--reruns 50]

A store (SQLite, as the embedded mode's) holds `--insights` insights, each re-run
`--reruns` times by later flows (every re-run is a change in the outbox, as each flow of the
pipeline makes), then one run drains the outbox into a DuckDB file the way the agent's
child process does (`InsightExporter.export`, batches of 500). Printed: the changes
exported, the run's CPU per change and per 1,000 changes, split into reading the batches
from the store and writing them into DuckDB. Then the same on a second store the child's
way (`leave_exported`: the run leaves its rows, the agent drops them afterwards, 500 per
transaction), with the agent's drop apart.

Why it matters: the job runs once a minute inside the execution agent's box, beside the
pipeline; the changes of a busy minute (every flow re-runs its subject's insights) are
exported in one run, and its CPU is taken from the flows running at the same time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from contracts import Flag, Subject
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import open_store
from services.execution_agent.warehouse_export.duckdb_sink import DuckDBInsightSink
from services.execution_agent.warehouse_export.exporter import InsightExporter
from services.execution_agent.warehouse_export.outbox import ExportBatch, ExportOutbox


def fill(repo: InsightRepository, insights: int, reruns: int) -> None:
    flag = Flag(
        type="risk",
        severity="high",
        description="No customer calls in 30 days",
        code="missing_data_flag",
        category="deal_quality",
        insight_type="missing_data",
    )
    for run in range(reruns + 1):  # the first run creates, each later one re-runs
        with repo.store.transaction():  # one transaction per round, as a batch of flows
            for n in range(insights):
                subject = Subject(account_id=f"ACC-{n}", opportunity_id=f"OPP-{n}")
                repo.upsert_from_flag(subject, flag, f"req-{n}-{run}")


class TimedOutbox(ExportOutbox):
    """The outbox with the CPU its batch reads take kept aside."""

    read_cpu_s = 0.0

    def next_batch(self, size: int, after_seq: int = 0) -> ExportBatch | None:
        started = time.process_time()
        try:
            return super().next_batch(size, after_seq)
        finally:
            self.read_cpu_s += time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--insights", type=int, default=200)
    parser.add_argument("--reruns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "revops.db")
        fill(InsightRepository(store), args.insights, args.reruns)
        outbox = TimedOutbox(store)
        target = Path(tmp) / "insights.duckdb"
        exporter = InsightExporter(store, lambda: DuckDBInsightSink(target), outbox=outbox)
        started = time.process_time()
        report = exporter.export()
        cpu_s = time.process_time() - started

        child_store = open_store(Path(tmp) / "child.db")
        fill(InsightRepository(child_store), args.insights, args.reruns)
        child_target = Path(tmp) / "child.duckdb"
        child = InsightExporter(child_store, lambda: DuckDBInsightSink(child_target))
        started = time.process_time()
        left = child.export(leave_exported=True)
        run_s = time.process_time() - started
        started = time.process_time()
        dropped = child.outbox.drop(left.exported)
        drop_s = time.process_time() - started
    changes = max(report.changes, 1)
    print(f"changes exported: {report.changes:,} changes")
    print(f"changes per insight: {args.reruns + 1} changes")
    print(f"export CPU per 1,000 changes: {cpu_s * 1e6 / changes:,.1f} ms")
    print(f"of which reading the store: {outbox.read_cpu_s * 1e6 / changes:,.1f} ms")
    print(f"of which writing DuckDB: {(cpu_s - outbox.read_cpu_s) * 1e6 / changes:,.1f} ms")
    print(f"export changes/s of CPU: {changes / max(cpu_s, 1e-9):,.0f} changes/s")
    left_changes = max(left.changes, 1)
    print(f"the child's way, run per 1,000 changes: {run_s * 1e6 / left_changes:,.1f} ms")
    drop_ms = drop_s * 1e6 / left_changes
    print(f"the child's way, the agent's drop per 1,000 changes: {drop_ms:,.1f} ms")
    print(f"the child's way, rows dropped: {dropped:,} of {left.changes:,}")


if __name__ == "__main__":
    main()
